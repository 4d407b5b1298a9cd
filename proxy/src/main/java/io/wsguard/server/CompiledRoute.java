package io.wsguard.server;

import io.wsguard.check.Mode;
import io.wsguard.handshake.HandshakeChain;
import io.wsguard.policy.MessagePolicy;
import io.wsguard.policy.RoutePolicy;
import io.wsguard.relay.UpstreamConnector;
import io.wsguard.route.RouteMatcher;
import java.time.Duration;

/**
 * A route ready to serve: its matcher, handshake checks, upstream connector and session limits, all
 * built once from its {@link RoutePolicy}. A connection keeps the compiled route it started with,
 * also across a reload.
 */
record CompiledRoute(
        RoutePolicy policy,
        RouteMatcher matcher,
        HandshakeChain chain,
        UpstreamConnector connector,
        UpstreamHeaders headers,
        ServerEvents events) {

    String name() {
        return policy.name();
    }

    Mode mode() {
        return policy.mode();
    }

    long inboundMaxSize() {
        return policy.messages().maxSize();
    }

    /** {@code direction: both} applies the size limit to the upstream's messages too. */
    long outboundMaxSize() {
        return policy.messages().direction() == MessagePolicy.Direction.BOTH ? policy.messages().maxSize() : Long.MAX_VALUE;
    }

    boolean compressionAllowed() {
        return policy.messages().compressionAllowed();
    }

    Duration idleTimeout() {
        return policy.limits().idleTimeout();
    }

    Duration maxLifetime() {
        return policy.limits().maxLifetime();
    }
}
