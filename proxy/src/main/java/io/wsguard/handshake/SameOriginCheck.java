package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.Origin;
import java.util.concurrent.CompletionStage;

/**
 * The origin rule of a route without an {@code origin:} section (docs/policy.md): a request with no Origin
 * (a non-browser client) passes, and so does one whose Origin is on the request's host and port; any
 * other Origin is a cross-site page trying to use the visitor's cookies (cross-site WebSocket
 * hijacking) and gets 403 {@code origin_denied}.
 *
 * <p>The port counts: a page on {@code http://127.0.0.1:8000} is another site than a proxy on
 * {@code ws://127.0.0.1:9000}, and on a plain listener a DNS-rebinding page reaches the proxy under its
 * own host name but rarely on its port. Default ports are normalised ({@code http}/{@code ws} 80,
 * {@code https}/{@code wss} 443). The request's port is its Host's; a Host without one was sent for
 * the default port of the client's scheme, which wsguard cannot know behind a TLS-terminating load
 * balancer, so an Origin on either default port (its own scheme's) matches it. Schemes are not
 * compared otherwise: a page on {@code https://chat.example.com} opening {@code ws://chat.example.com}
 * through that balancer is the same site.
 */
final class SameOriginCheck implements HandshakeCheck {

    static final SameOriginCheck INSTANCE = new SameOriginCheck();

    private SameOriginCheck() {}

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final String origin = request.header("Origin");
        if (origin == null || sameOrigin(origin, request.host())) {
            return ALLOWED;
        }
        return HandshakeCheck.deny(
                Reason.ORIGIN_DENIED, "origin is not the request's host and port (the route has no origin.allow)");
    }

    /**
     * Whether {@code origin} (the header's value) names {@code host} (the request's Host, with its
     * port as sent, or null) and its port. Both are read by {@link Origin}'s strict parser, so the
     * host compares case-insensitively and IPv6 literals in one spelling; anything it does not take
     * ({@code null}, a path, a trailing dot) is not the same origin.
     */
    static boolean sameOrigin(String origin, String host) {
        if (host == null) {
            return false;
        }
        final Origin page = Origin.parse(origin.strip());
        final String authority = host.strip();
        final Origin request = Origin.parse("http://" + authority);
        // Only web origins: an extension's (chrome-extension://ID) names no host of ours.
        if (page == null
                || request == null
                || defaultPort(page.scheme()) < 0
                || !page.host().equals(request.host())) {
            return false;
        }
        return hasPort(authority) ? page.port() == request.port() : page.port() == defaultPort(page.scheme());
    }

    /** Whether a Host value carries a port: a ':' after the host, outside an IPv6 literal's brackets. */
    private static boolean hasPort(String authority) {
        final int close = authority.lastIndexOf(']');
        return authority.indexOf(':', close + 1) >= 0;
    }

    private static int defaultPort(String scheme) {
        return switch (scheme) {
            case "http", "ws" -> 80;
            case "https", "wss" -> 443;
            default -> -1;
        };
    }
}
