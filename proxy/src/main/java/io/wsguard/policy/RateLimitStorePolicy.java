package io.wsguard.policy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * {@code rateLimitStore}: where the state that instances share lives (rate buckets, connection
 * leases, revocations, the cluster view).
 *
 * @param type defaults to {@code local}
 * @param redis present when {@code type: redis}
 */
public record RateLimitStorePolicy(Type type, Optional<RedisPolicy> redis) {

    /** {@code rateLimitStore.type}. */
    public enum Type {
        LOCAL,
        REDIS
    }

    /**
     * {@code rateLimitStore.redis}.
     *
     * @param uri defaults to {@code redis://127.0.0.1:6379}; {@code redis://}, {@code rediss://} (TLS),
     *     {@code redis-sentinel://} or {@code rediss-sentinel://} (Sentinel, with {@code #masterName})
     * @param onUnavailable defaults to {@code local}
     * @param cluster {@code cluster: true}: the URI names a seed node of a Redis Cluster; defaults to false
     * @param caFile {@code caFile}: PEM certificates that a {@code rediss} server's chain must end at,
     *     instead of the JVM's trust store
     * @param password {@code password} (usually {@code ${REDIS_PASSWORD}}): wins over one in the URI
     * @param timeout {@code timeout}: the most one Redis call may take before the feature decides
     *     without Redis; defaults to 200ms
     * @param leaseTtl {@code leaseTtl}: how long a connection slot outlives its instance's last
     *     heartbeat; defaults to 15s (heartbeats run every third of it)
     */
    public record RedisPolicy(
            String uri,
            OnUnavailable onUnavailable,
            boolean cluster,
            Optional<Path> caFile,
            Optional<Secret> password,
            Duration timeout,
            Duration leaseTtl) {

        /** The defaults of every key but {@code uri} and {@code onUnavailable} (tests). */
        public static RedisPolicy of(String uri, OnUnavailable onUnavailable) {
            return new RedisPolicy(
                    uri,
                    onUnavailable,
                    false,
                    Optional.empty(),
                    Optional.empty(),
                    Duration.ofMillis(200),
                    Duration.ofSeconds(15));
        }
    }

    /** What a shared feature does while Redis cannot be reached. */
    public enum OnUnavailable {
        LOCAL,
        ALLOW,
        DENY
    }
}
