package io.wsguard.policy;

import java.time.Duration;
import java.util.List;

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
 */
public record ProxyPolicy(
        List<String> trustedProxies,
        int maxConnections,
        Duration handshakeTimeout,
        Duration drainTimeout,
        PathMatching pathMatching) {

    public ProxyPolicy {
        trustedProxies = List.copyOf(trustedProxies);
    }

    /** {@code proxy.pathMatching}. */
    public enum PathMatching {
        NORMALIZED,
        EXACT
    }
}
