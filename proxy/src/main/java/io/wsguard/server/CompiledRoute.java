package io.wsguard.server;

import io.wsguard.auth.Principal;
import io.wsguard.check.Mode;
import io.wsguard.handshake.HandshakeChain;
import io.wsguard.handshake.TokenSources;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.limit.LimitState;
import io.wsguard.policy.LimitsPolicy;
import io.wsguard.policy.MessagePolicy;
import io.wsguard.policy.RoutePolicy;
import io.wsguard.relay.ContentInspector;
import io.wsguard.relay.MessageRules;
import io.wsguard.relay.UpstreamConnector;
import io.wsguard.route.RouteMatcher;
import java.time.Duration;
import java.time.Instant;

/**
 * A route ready to serve: its matcher, handshake checks, upstream connector and session limits, all
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
        MessageRules inboundRules,
        MessageRules outboundRules,
        ServerEvents events) {

    String name() {
        return policy.name();
    }

    Mode mode() {
        return policy.mode();
    }

    /**
     * What the client's and the upstream's messages must satisfy: {@code direction: both} applies
     * the {@code messages:} rules to the upstream's too (rates never: they limit clients), and
     * {@code inbound} leaves them unlimited.
     */
    static MessageRules[] messageRules(RoutePolicy route, LimitState.RouteLimits limits, ContentInspector content) {
        final MessagePolicy messages = route.messages();
        final LimitsPolicy rates = route.limits();
        final MessageRules inbound = new MessageRules(messages.maxSize(), messages.binaryAllowed(), content, messages.onViolation(),
                rates.messagesPerConnection().orElse(null), rates.bytesPerConnection().orElse(null),
                rates.messagesPerSubject().map(limits::messagesPerSubject).orElse(null), rates.onExceed(), messages.maxFragments());
        final MessageRules outbound = messages.direction() == MessagePolicy.Direction.BOTH
                ? new MessageRules(messages.maxSize(), messages.binaryAllowed(), content, messages.onViolation(), null, null, null, rates.onExceed(),
                        messages.maxFragments())
                : MessageRules.sizeOnly(Long.MAX_VALUE);
        return new MessageRules[] {inbound, outbound};
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
