package io.wsguard.handshake;

import io.github.bucket4j.ConsumptionProbe;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.limit.ClientKey;
import io.wsguard.limit.KeyedBuckets;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * {@code limits.handshakes.perIp}: a token bucket per client ({@link ClientKey}: the IPv4 address,
 * or the IPv6 /64), one token per upgrade request. Past it, 429 {@code handshake_rate} with
 * {@code Retry-After} saying when the next token is due. Runs before the token check, so a flood
 * of bad tokens costs no signature verifications.
 */
public final class HandshakeRateCheck implements HandshakeCheck {

    private final KeyedBuckets buckets;
    private final String detail;

    public HandshakeRateCheck(KeyedBuckets buckets, RateLimitPolicy limit) {
        this.buckets = buckets;
        this.detail = "limits.handshakes.perIp of " + limit.rate() + " (burst " + limit.burst() + ") exceeded";
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final ConsumptionProbe probe = buckets.tryConsume(ClientKey.of(request.clientIp()), 1);
        if (probe.isConsumed()) {
            return ALLOWED;
        }
        final long seconds = Math.max(1, (probe.getNanosToWaitForRefill() + TimeUnit.SECONDS.toNanos(1) - 1) / TimeUnit.SECONDS.toNanos(1));
        return CompletableFuture.completedStage(Verdict.deny(Reason.HANDSHAKE_RATE, detail, seconds));
    }
}
