package io.wsguard.handshake;

import io.github.bucket4j.ConsumptionProbe;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.limit.ClientKey;
import io.wsguard.limit.KeyedBuckets;
import io.wsguard.limit.RedisBuckets;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * {@code limits.handshakes.perIp}: a token bucket per client ({@link ClientKey}: the IPv4 address,
 * or the IPv6 /64), one token per upgrade request. Past it, 429 {@code handshake_rate} with
 * {@code Retry-After} saying when the next token is due. Runs before the token check, so a flood
 * of bad tokens costs no signature verifications.
 *
 * <p>With {@code rateLimitStore.type: redis} the buckets live in Redis, shared by every instance
 * ({@link RedisBuckets}); while Redis cannot answer, {@code onUnavailable} decides: the local
 * buckets (this instance's own, each holding the whole limit), allow, or deny.
 */
final class HandshakeRateCheck implements HandshakeCheck {

    private final KeyedBuckets buckets;
    private final String detail;
    private final RedisBuckets shared;
    private final String sharedPrefix;
    private final RateLimitPolicy limit;
    private final Executor executor;

    /** Local buckets only ({@code rateLimitStore.type: local}). */
    HandshakeRateCheck(KeyedBuckets buckets, RateLimitPolicy limit) {
        this(buckets, limit, null, null, null);
    }

    /**
     * Buckets in {@code shared} (when not null), with {@code buckets} as the local fallback.
     * Redis answers on Lettuce's I/O threads; the rest of the handshake continues on {@code executor}.
     */
    HandshakeRateCheck(
            KeyedBuckets buckets, RateLimitPolicy limit, RedisBuckets shared, String route, Executor executor) {
        this.buckets = buckets;
        this.limit = limit;
        this.detail = "limits.handshakes.perIp of " + limit.rate() + " (burst " + limit.burst() + ") exceeded";
        this.shared = shared;
        this.executor = executor;
        // The limit is part of the key: after a reload that changes it, no instance mixes the old
        // bucket (and its spent tokens) with the new limit.
        this.sharedPrefix = "wsguard:hs:" + route + ":" + limit.burst() + ":"
                + limit.rate().amount() + "/" + limit.rate().per().toMillis() + "ms:";
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final String client = ClientKey.of(request.clientIp());
        if (shared == null) {
            return CompletableFuture.completedStage(verdict(buckets.tryConsume(client, 1)));
        }
        return shared.tryConsume("handshake_rate", sharedPrefix + client, limit)
                .handleAsync(
                        (probe, failure) -> {
                            if (failure == null) {
                                return verdict(probe);
                            }
                            return switch (shared.onUnavailable()) {
                                case LOCAL -> verdict(buckets.tryConsume(client, 1));
                                case ALLOW -> Verdict.ALLOW;
                                // Not a 429: the client did nothing wrong, wsguard could not check. 503 check_failed
                                // says so, like any other check that cannot decide (fail closed).
                                case DENY ->
                                    Verdict.deny(
                                            Reason.CHECK_FAILED,
                                            "rate-limit store unavailable (rateLimitStore.redis.onUnavailable: deny)");
                            };
                        },
                        executor);
    }

    private Verdict verdict(ConsumptionProbe probe) {
        if (probe.isConsumed()) {
            return Verdict.ALLOW;
        }
        final long seconds = Math.max(
                1, (probe.getNanosToWaitForRefill() + TimeUnit.SECONDS.toNanos(1) - 1) / TimeUnit.SECONDS.toNanos(1));
        return Verdict.deny(Reason.HANDSHAKE_RATE, detail, seconds);
    }
}
