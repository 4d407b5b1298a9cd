package io.wsguard.server;

import io.wsguard.auth.Principal;
import io.wsguard.handshake.HandshakeRequest;
import io.wsguard.handshake.TokenSources;
import io.wsguard.policy.UpstreamPolicy.HeadersPolicy;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;

/**
 * Builds the headers of the upgrade request sent upstream: the {@code X-Forwarded-*} set, the
 * headers a route forwards, and the ones it sets; never the hop-by-hop or handshake headers, which
 * the upstream handshake makes itself.
 *
 * <p>{@code ${jwt.CLAIM}} in a set value expands to the verified token's claim, {@code ${tls.subject}}
 * and {@code ${tls.fingerprint}} to the verified client certificate's subject (RFC 2253) and SHA-256
 * fingerprint (of its DER, 64 lower-case hex digits). A header the route sets is never copied from the
 * client, whatever its case, so a client cannot smuggle in an {@code X-User} of its choosing; when a
 * claim or the certificate the value needs is absent, the header is left out.
 *
 * <p>On a route that verifies tokens, a forwarded {@code Authorization} is never the client's field:
 * it is {@code Bearer <the token that verified>}, whichever source the token came from, or absent
 * when none verified (monitor mode). The client's field could hold another credential than the
 * one verified, and the upstream would act on it.
 */
final class UpstreamHeaders {

    /** Handled by the upstream handshake itself, or meaningless past this hop. */
    private static final Set<String> NEVER_COPIED = Set.of(
            "host",
            "connection",
            "upgrade",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
            "sec-websocket-protocol",
            "sec-websocket-accept",
            "content-length",
            "transfer-encoding",
            "te",
            "trailer",
            "keep-alive",
            "proxy-connection",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded");

    private static final Pattern CLAIM = Pattern.compile("\\$\\{jwt\\.([A-Za-z0-9_:.-]+)}");
    /** Claims and certificate fields in one pass, so that neither's text is ever read as the other's reference. */
    private static final Pattern REFERENCE = Pattern.compile("\\$\\{(jwt|tls)\\.([A-Za-z0-9_:.-]+)}");

    private final List<String> forward;
    private final List<String> tokenCookies;
    private final boolean verifiesTokens;
    private final Map<String, String> set;
    private final Set<String> setLower;
    private final Set<String> removed;

    UpstreamHeaders(HeadersPolicy policy) {
        this(policy, null);
    }

    /**
     * @param tokens the route's token sources, or null for {@code auth: none}: its {@code cookie:NAME}
     *     sources are kept out of a forwarded Cookie, and with any a forwarded Authorization is the
     *     verified token
     */
    UpstreamHeaders(HeadersPolicy policy, TokenSources tokens) {
        this.tokenCookies = tokens == null ? List.of() : tokens.cookieNames();
        this.verifiesTokens = tokens != null;
        this.forward = policy.forward();
        this.set = policy.set();
        final Set<String> removed = new HashSet<>();
        for (String name : policy.remove()) {
            removed.add(name.toLowerCase(Locale.ROOT));
        }
        this.removed = Set.copyOf(removed);
        final Set<String> setLower = new HashSet<>();
        for (String name : policy.set().keySet()) {
            setLower.add(name.toLowerCase(Locale.ROOT));
        }
        this.setLower = Set.copyOf(setLower);
    }

    /**
     * @param peerIp the TCP peer, appended to X-Forwarded-For
     * @param peerTrusted whether the TCP peer is a trusted proxy, whose forwarded headers we extend
     * @param principal the verified token's principal, or null when the route has no token
     * @param verifiedToken the token that verified, or null
     */
    HttpFields build(Request request, String peerIp, boolean peerTrusted, Principal principal, String verifiedToken) {
        final HttpFields incoming = request.getHeaders();
        final HttpFields.Mutable out = HttpFields.build();
        for (String name : forward) {
            final String lower = name.toLowerCase(Locale.ROOT);
            if (NEVER_COPIED.contains(lower) || removed.contains(lower) || setLower.contains(lower)) {
                continue;
            }
            if (verifiesTokens && lower.equals("authorization")) {
                if (verifiedToken != null) {
                    // The verifier took only base64url and dots: nothing here can split a header.
                    out.put(HttpHeader.AUTHORIZATION, "Bearer " + verifiedToken);
                }
                continue;
            }
            for (HttpField field : incoming) {
                if (!field.getName().equalsIgnoreCase(name)) {
                    continue;
                }
                if (field.getHeader() == HttpHeader.COOKIE && !tokenCookies.isEmpty()) {
                    // The token is wsguard's to check, not the upstream's to log or replay.
                    final String rest = withoutCookies(field.getValue(), tokenCookies);
                    if (!rest.isEmpty()) {
                        out.add(HttpHeader.COOKIE, rest);
                    }
                } else {
                    out.add(field);
                }
            }
        }
        // Every line: a trusted proxy may add its own line rather than extend the client's, and the
        // first line alone would then be the client's claim with the real address lost.
        final List<String> priorLines = peerTrusted ? incoming.getValuesList(HttpHeader.X_FORWARDED_FOR) : List.of();
        final String priorFor = priorLines.isEmpty() ? null : String.join(", ", priorLines);
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
                final String value = expand(entry.getValue(), principal, request);
                if (value != null) {
                    out.put(entry.getKey(), value);
                }
            }
        }
        return out;
    }

    /** A Cookie header's value without the cookies named {@code names} (RFC 6265 §5.4 pairs, {@code ; }-joined). */
    static String withoutCookies(String cookieHeader, List<String> names) {
        final StringJoiner kept = new StringJoiner("; ");
        for (String pair : cookieHeader.split(";", -1)) {
            final String trimmed = pair.strip();
            if (trimmed.isEmpty()) {
                continue;
            }
            final int equals = trimmed.indexOf('=');
            final String name = (equals < 0 ? trimmed : trimmed.substring(0, equals)).strip();
            if (!names.contains(name)) {
                kept.add(trimmed);
            }
        }
        return kept.toString();
    }

    /** The value with its claims and client certificate fields filled in, or null when one is missing. */
    static String expand(String template, Principal principal, Request request) {
        if (template.indexOf("${tls.") < 0) {
            return expand(template, principal);
        }
        final X509Certificate certificate = HandshakeRequest.clientCertificate(request);
        final Matcher matcher = REFERENCE.matcher(template);
        final StringBuilder out = new StringBuilder();
        while (matcher.find()) {
            final String value;
            if (matcher.group(1).equals("tls")) {
                value = certificate == null ? null : certificateField(certificate, matcher.group(2));
            } else {
                value = principal == null ? null : principal.claimText(matcher.group(2));
            }
            if (value == null) {
                return null;
            }
            matcher.appendReplacement(out, Matcher.quoteReplacement(headerSafe(value)));
        }
        matcher.appendTail(out);
        return out.toString();
    }

    /**
     * {@code subject}: the subject DN as RFC 2253 writes it ({@code CN=alice,O=Example}), as NGINX's
     * {@code $ssl_client_s_dn}; {@code fingerprint}: SHA-256 of the certificate's DER in 64 lower-case
     * hex digits, no colons, as Envoy's {@code x-forwarded-client-cert} {@code Hash}.
     */
    private static String certificateField(X509Certificate certificate, String field) {
        return switch (field) {
            case "subject" -> certificate.getSubjectX500Principal().getName(X500Principal.RFC2253);
            case "fingerprint" -> {
                try {
                    yield HexFormat.of()
                            .formatHex(MessageDigest.getInstance("SHA-256").digest(certificate.getEncoded()));
                } catch (NoSuchAlgorithmException | CertificateEncodingException e) {
                    // Every JDK has SHA-256, and TLS just parsed this certificate from its DER.
                    throw new IllegalStateException("cannot fingerprint the client certificate", e);
                }
            }
            // The binder admits only the two fields above.
            default -> null;
        };
    }

    /** The value with its claims filled in, or null when one is missing. */
    static String expand(String template, Principal principal) {
        if (template.indexOf("${jwt.") < 0) {
            return template;
        }
        if (principal == null) {
            return null;
        }
        final Matcher matcher = CLAIM.matcher(template);
        final StringBuilder out = new StringBuilder();
        while (matcher.find()) {
            final String claim = principal.claimText(matcher.group(1));
            if (claim == null) {
                return null;
            }
            matcher.appendReplacement(out, Matcher.quoteReplacement(headerSafe(claim)));
        }
        matcher.appendTail(out);
        return out.toString();
    }

    /**
     * A claim is the token issuer's text, and a subject the certificate authority's, not ours:
     * control characters could split the header.
     */
    private static String headerSafe(String claim) {
        StringBuilder out = null;
        for (int i = 0; i < claim.length(); i++) {
            final char c = claim.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                if (out == null) {
                    out = new StringBuilder(claim.length()).append(claim, 0, i);
                }
                out.append(' ');
            } else if (out != null) {
                out.append(c);
            }
        }
        return out == null ? claim : out.toString();
    }
}
