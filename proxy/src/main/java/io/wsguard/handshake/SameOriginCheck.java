package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;
import java.util.concurrent.CompletionStage;

/**
 * The origin rule of a route without an {@code origin:} section (SPEC §3): a request with no Origin
 * (a non-browser client) passes, and so does one whose Origin host is the request's Host; any other
 * Origin is a cross-site page trying to use the visitor's cookies (cross-site WebSocket hijacking)
 * and gets 403 {@code origin_denied}. Ports and schemes are not compared: a page on
 * {@code http://chat.example.com} talking to {@code wss://chat.example.com:8443} is the same site.
 */
public final class SameOriginCheck implements HandshakeCheck {

    public static final SameOriginCheck INSTANCE = new SameOriginCheck();

    private SameOriginCheck() {}

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final String origin = request.header("Origin");
        if (origin == null) {
            return ALLOWED;
        }
        final String originHost = originHost(origin);
        final String host = hostWithoutPort(request.host());
        if (originHost != null && originHost.equals(host)) {
            return ALLOWED;
        }
        return HandshakeCheck.deny(Reason.ORIGIN_DENIED, "origin is not the request's host (the route has no origin.allow)");
    }

    /** The lower-case host of an Origin header, or null when it is not a serialized origin ({@code null} included). */
    static String originHost(String origin) {
        try {
            final URI uri = new URI(origin.strip());
            final String host = uri.getHost();
            if (uri.getScheme() == null || host == null) {
                return null;
            }
            return stripBrackets(host.toLowerCase(Locale.ROOT));
        } catch (URISyntaxException e) {
            return null;
        }
    }

    static String hostWithoutPort(String host) {
        if (host == null) {
            return "";
        }
        String h = host.strip().toLowerCase(Locale.ROOT);
        if (h.startsWith("[")) {
            final int end = h.indexOf(']');
            return end > 0 ? h.substring(1, end) : h;
        }
        final int colon = h.indexOf(':');
        return colon >= 0 ? h.substring(0, colon) : h;
    }

    private static String stripBrackets(String host) {
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    }
}
