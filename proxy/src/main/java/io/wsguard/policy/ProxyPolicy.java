package io.wsguard.policy;

import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * {@code proxy}: process-wide limits.
 *
 * @param trustedProxies CIDRs ({@code 10.0.0.0/8}, {@code ::1/128}) whose X-Forwarded-For is believed;
 *     defaults to none
 * @param maxConnections defaults to 100000; beyond it handshakes get 503
 * @param handshakeTimeout defaults to 10s: slow or incomplete handshakes are cut
 * @param drainTimeout defaults to 30s
 * @param pathMatching defaults to {@code normalized}: routes match paths regardless of case and of
 *     one trailing slash, as most upstream frameworks resolve them; {@code exact} compares as written
 * @param clusterMaxConnections the open connections all instances sharing the Redis of
 *     {@code rateLimitStore.type: redis} may hold together; beyond it handshakes get 503. None by
 *     default: each instance has only its own {@code maxConnections}
 */
public record ProxyPolicy(
        List<String> trustedProxies,
        int maxConnections,
        Duration handshakeTimeout,
        Duration drainTimeout,
        PathMatching pathMatching,
        Optional<Integer> clusterMaxConnections) {

    public ProxyPolicy {
        trustedProxies = List.copyOf(trustedProxies);
    }

    /** Without a cluster-wide cap. */
    public ProxyPolicy(
            List<String> trustedProxies,
            int maxConnections,
            Duration handshakeTimeout,
            Duration drainTimeout,
            PathMatching pathMatching) {
        this(trustedProxies, maxConnections, handshakeTimeout, drainTimeout, pathMatching, Optional.empty());
    }

    /** {@code proxy.pathMatching}. */
    public enum PathMatching {
        NORMALIZED,
        EXACT
    }
}
