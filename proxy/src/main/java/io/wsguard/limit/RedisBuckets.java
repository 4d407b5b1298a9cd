package io.wsguard.limit;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.wsguard.cluster.RedisStore;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.policy.RateLimitStorePolicy.OnUnavailable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Token buckets kept in Redis ({@code rateLimitStore.type: redis}), so that every wsguard instance
 * using the same Redis shares them: Bucket4j's compare-and-swap proxy manager over the
 * {@link RedisStore}'s bucket connection, used only through its async API so that no Jetty thread
 * waits for Redis. About 115 µs per call on loopback: fine per handshake, far too slow per message
 * (per-subject message rates take tokens in blocks instead, {@link #tryTakeUpTo}).
 *
 * <p>A call fails fast when Redis cannot decide (the store's breaker, timeout and fallback
 * counting); the caller then answers as {@link #onUnavailable()} says.
 *
 * <p>Thread-safe. One per running proxy, shared by all routes; the store it uses is closed by its owner.
 */
public final class RedisBuckets {

    private final RedisStore store;

    public RedisBuckets(RedisStore store) {
        this.store = store;
    }

    /** The store underneath. */
    public RedisStore store() {
        return store;
    }

    /** What a limit does while Redis cannot answer. */
    public OnUnavailable onUnavailable() {
        return store.onUnavailable();
    }

    /** Whether the connection has been made (it may be reconnecting now). */
    public boolean connected() {
        return store.connected();
    }

    /**
     * Takes one token from the shared bucket {@code key} holding {@code limit}. The stage fails
     * (quickly) when Redis cannot decide; the failure is already counted under {@code feature}.
     *
     * @param key a Redis key that names the limit too, so that a changed limit starts afresh
     */
    public CompletionStage<ConsumptionProbe> tryConsume(String feature, String key, RateLimitPolicy limit) {
        final BucketConfiguration configuration = configuration(limit);
        return store.callBuckets(
                feature, manager -> manager.getProxy(key, () -> CompletableFuture.completedFuture(configuration))
                        .tryConsumeAndReturnRemaining(1));
    }

    /**
     * Takes as many tokens as the shared bucket {@code key} has, up to {@code wanted}; the stage
     * gives how many it got (0 when the bucket is empty). For allowances that an instance spends
     * locally: one Redis call per block instead of one per message.
     */
    public CompletionStage<Long> tryTakeUpTo(String feature, String key, RateLimitPolicy limit, long wanted) {
        final BucketConfiguration configuration = configuration(limit);
        return store.callBuckets(
                feature, manager -> manager.getProxy(key, () -> CompletableFuture.completedFuture(configuration))
                        .tryConsumeAsMuchAsPossible(wanted));
    }

    /**
     * Gives {@code tokens} back to the shared bucket {@code key} (never above its capacity): what an
     * instance took in a block and did not spend.
     */
    public CompletionStage<Void> giveBack(String feature, String key, RateLimitPolicy limit, long tokens) {
        final BucketConfiguration configuration = configuration(limit);
        return store.callBuckets(
                feature, manager -> manager.getProxy(key, () -> CompletableFuture.completedFuture(configuration))
                        .addTokens(tokens));
    }

    private static BucketConfiguration configuration(RateLimitPolicy limit) {
        return BucketConfiguration.builder()
                .addLimit(Bandwidth.builder()
                        .capacity(limit.burst())
                        .refillGreedy(limit.rate().amount(), limit.rate().per())
                        .build())
                .build();
    }
}
