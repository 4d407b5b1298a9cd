package io.wsguard.server;

import io.wsguard.auth.Principal;
import io.wsguard.check.Mode;
import io.wsguard.handshake.HandshakeChain;
import io.wsguard.handshake.TokenSources;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.RoutePolicy;
import io.wsguard.relay.MessageRules;
import io.wsguard.relay.SessionSettings;
import io.wsguard.relay.UpstreamConnector;
import io.wsguard.route.RouteMatcher;
import java.time.Duration;
import java.time.Instant;

/**
 * A route ready to serve: its matcher, handshake checks, upstream connector and session settings, all
 * built once from its {@link RoutePolicy}. A connection keeps the compiled route it started with,
 * also across a reload.
 *
 * @param tokens where the route reads its token, or null for {@code auth: none}
 */
record CompiledRoute(
        RoutePolicy policy,
        RouteMatcher matcher,
        HandshakeChain chain,
        UpstreamConnector connector,
        UpstreamHeaders headers,
        TokenSources tokens,
        SessionSettings session,
        ServerEvents events) {

    String name() {
        return policy.name();
    }

    Mode mode() {
        return policy.mode();
    }

    /** What the client's messages must satisfy. */
    MessageRules inboundRules() {
        return session.inboundRules();
    }

    /** What the upstream's messages must satisfy: the client's rules with {@code direction: both}, else only a size limit. */
    MessageRules outboundRules() {
        return session.outboundRules();
    }

    boolean compressionAllowed() {
        return policy.messages().compressionAllowed();
    }

    Duration idleTimeout() {
        return session.idleTimeout();
    }

    /**
     * When a connection opened with {@code principal}'s token is closed for its expiry, or null. The
     * handshake accepted the token up to {@code exp + clockSkew}, so the connection lives as long:
     * closing at {@code exp} could close a connection the moment it opened.
     */
    Instant tokenDeadline(Principal principal) {
        final AuthPolicy.JwtPolicy jwt = policy.auth().jwt().orElse(null);
        if (principal == null || jwt == null || jwt.onExpiry() != AuthPolicy.OnExpiry.CLOSE) {
            return null;
        }
        return principal.expiresAt().map(exp -> exp.plus(jwt.clockSkew())).orElse(null);
    }
}
