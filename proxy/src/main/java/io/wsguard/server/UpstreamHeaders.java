package io.wsguard.server;

import io.wsguard.policy.UpstreamPolicy.HeadersPolicy;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;

/**
 * Builds the headers of the upgrade request sent upstream: the {@code X-Forwarded-*} set, the
 * headers a route forwards, and the ones it sets; never the hop-by-hop or handshake headers, which
 * the upstream handshake makes itself.
 */
final class UpstreamHeaders {

    /** Handled by the upstream handshake itself, or meaningless past this hop. */
    private static final Set<String> NEVER_COPIED = Set.of(
            "host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
            "sec-websocket-extensions", "sec-websocket-protocol", "sec-websocket-accept",
            "content-length", "transfer-encoding", "te", "trailer", "keep-alive", "proxy-connection",
            "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded");

    private final List<String> forward;
    private final Map<String, String> set;
    private final Set<String> removed;

    UpstreamHeaders(HeadersPolicy policy) {
        this.forward = policy.forward();
        this.set = policy.set();
        final Set<String> removed = new HashSet<>();
        for (String name : policy.remove()) {
            removed.add(name.toLowerCase(Locale.ROOT));
        }
        this.removed = Set.copyOf(removed);
    }

    /**
     * @param peerIp the TCP peer, appended to X-Forwarded-For
     * @param peerTrusted whether the TCP peer is a trusted proxy, whose forwarded headers we extend
     */
    HttpFields build(Request request, String peerIp, boolean peerTrusted) {
        final HttpFields incoming = request.getHeaders();
        final HttpFields.Mutable out = HttpFields.build();
        for (String name : forward) {
            final String lower = name.toLowerCase(Locale.ROOT);
            if (NEVER_COPIED.contains(lower) || removed.contains(lower) || set.containsKey(name)) {
                continue;
            }
            for (HttpField field : incoming) {
                if (field.getName().equalsIgnoreCase(name)) {
                    out.add(field);
                }
            }
        }
        final String priorFor = peerTrusted ? incoming.get(HttpHeader.X_FORWARDED_FOR) : null;
        out.put(HttpHeader.X_FORWARDED_FOR, priorFor == null ? peerIp : priorFor + ", " + peerIp);
        final String priorProto = peerTrusted ? incoming.get(HttpHeader.X_FORWARDED_PROTO) : null;
        out.put(HttpHeader.X_FORWARDED_PROTO, priorProto != null ? priorProto : request.isSecure() ? "https" : "http");
        final String priorHost = peerTrusted ? incoming.get(HttpHeader.X_FORWARDED_HOST) : null;
        final String host = priorHost != null ? priorHost : incoming.get(HttpHeader.HOST);
        if (host != null) {
            out.put(HttpHeader.X_FORWARDED_HOST, host);
        }
        for (Map.Entry<String, String> entry : set.entrySet()) {
            if (!removed.contains(entry.getKey().toLowerCase(Locale.ROOT))) {
                out.put(entry.getKey(), entry.getValue());
            }
        }
        return out;
    }
}
