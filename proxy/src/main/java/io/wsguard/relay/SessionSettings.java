package io.wsguard.relay;

import io.wsguard.check.Mode;
import io.wsguard.limit.LimitState;
import io.wsguard.limit.RedisBuckets;
import io.wsguard.policy.LimitsPolicy;
import io.wsguard.policy.MessagePolicy;
import io.wsguard.policy.RoutePolicy;
import java.time.Duration;

/**
 * What every {@link ProxySession} of one route shares: computed once when the policy compiles, and
 * kept by each connection for as long as it lives, also across a reload.
 *
 * @param route the route's name, for the audit log and metrics
 * @param mode enforce, or monitor (report what would have been refused, refuse nothing)
 * @param inboundRules what the client's messages must satisfy
 * @param outboundRules what the upstream's messages must satisfy ({@code direction: both}), or only a
 *     size limit ({@code Long.MAX_VALUE}: none)
 * @param idleTimeout how long a connection may pass no frame before it is closed with 1001
 * @param maxLifetime how long a connection may stay open at all before it is closed with 1001
 */
public record SessionSettings(
        String route,
        Mode mode,
        MessageRules inboundRules,
        MessageRules outboundRules,
        Duration idleTimeout,
        Duration maxLifetime) {

    /**
     * Compiles {@code route}'s session rules: {@code direction: both} applies the {@code messages:}
     * rules to the upstream's messages too (rates never: they limit clients), and {@code inbound}
     * leaves them unlimited.
     *
     * @param limits the route's buckets by token subject, which outlive the policy
     * @param content the route's compiled content rules, or null when it has none
     */
    public static SessionSettings from(RoutePolicy route, LimitState.RouteLimits limits, ContentInspector content) {
        return from(route, limits, content, null);
    }

    /**
     * As above, with the per-subject rates shared through {@code shared}
     * ({@code rateLimitStore.type: redis}; null: this instance's buckets only).
     */
    public static SessionSettings from(
            RoutePolicy route, LimitState.RouteLimits limits, ContentInspector content, RedisBuckets shared) {
        final MessagePolicy messages = route.messages();
        final LimitsPolicy rates = route.limits();
        final MessageRules inbound = new MessageRules(
                messages.maxSize(),
                messages.binaryAllowed(),
                content,
                messages.onViolation(),
                rates.messagesPerConnection().orElse(null),
                rates.bytesPerConnection().orElse(null),
                rates.messagesPerSubject()
                        .map(limit -> limits.messagesPerSubject(limit, shared))
                        .orElse(null),
                rates.bytesPerSubject()
                        .map(limit -> limits.bytesPerSubject(limit, shared))
                        .orElse(null),
                rates.onExceed(),
                messages.maxFragments());
        final MessageRules outbound = messages.direction() == MessagePolicy.Direction.BOTH
                ? new MessageRules(
                        messages.maxSize(),
                        messages.binaryAllowed(),
                        content,
                        messages.onViolation(),
                        null,
                        null,
                        null,
                        null,
                        rates.onExceed(),
                        messages.maxFragments())
                : MessageRules.sizeOnly(Long.MAX_VALUE);
        return new SessionSettings(
                route.name(), route.mode(), inbound, outbound, rates.idleTimeout(), rates.maxLifetime());
    }
}
