package io.wsguard.policy;

import java.util.Optional;

/**
 * {@code rateLimitStore}: where rate-limit buckets live.
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
     * @param uri defaults to {@code redis://127.0.0.1:6379}
     * @param onUnavailable defaults to {@code local}
     */
    public record RedisPolicy(String uri, OnUnavailable onUnavailable) {}

    /** What a limit does while Redis cannot be reached. */
    public enum OnUnavailable {
        LOCAL,
        ALLOW,
        DENY
    }
}
