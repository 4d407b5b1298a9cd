package io.wsguard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.wsguard.cluster.RedisStore;
import io.wsguard.limit.SubjectRate.Take;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.policy.Rate;
import io.wsguard.policy.RateLimitStorePolicy.OnUnavailable;
import io.wsguard.policy.RateLimitStorePolicy.RedisPolicy;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.RedisServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The allowance arithmetic of per-subject rates shared through a real redis-server: each
 * {@link SubjectRate} on its own {@link RedisStore} stands for one wsguard instance.
 */
@Timeout(60)
class SubjectRateTest {

    private static final AtomicInteger NEXT = new AtomicInteger();

    @TempDir
    Path dir;

    @RegisterExtension
    final CloseAfterEach closeAfter = new CloseAfterEach();

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

    private static RateLimitPolicy limit(long amount, Duration per, long burst) {
        return new RateLimitPolicy(new Rate(amount, per), burst);
    }

    @Test
    void blockIsHalfASecondOfTheRateAndCreditOnlyWhenTwoBlocksFitInASecond() {
        final RateLimitPolicy tenPerSecond = limit(10, Duration.ofSeconds(1), 20);
        assertThat(SubjectRate.block(tenPerSecond)).isEqualTo(5);
        assertThat(SubjectRate.credit(tenPerSecond)).isEqualTo(5);
        assertThat(SubjectRate.slack(tenPerSecond)).isEqualTo(10);
        // Slower than 2/s: a block of 1, no credit (but a block's while the prefetch is in flight),
        // so the slack is 2 messages per instance.
        final RateLimitPolicy perMinute = limit(100, Duration.ofMinutes(1), 100);
        assertThat(SubjectRate.block(perMinute)).isEqualTo(1);
        assertThat(SubjectRate.credit(perMinute)).isZero();
        assertThat(SubjectRate.slack(perMinute)).isEqualTo(2);
        assertThat(SubjectRate.block(limit(3, Duration.ofSeconds(1), 3))).isEqualTo(1);
        assertThat(SubjectRate.credit(limit(3, Duration.ofSeconds(1), 3))).isEqualTo(1);
        // Never more than the burst: the shared bucket could not hand out more at once.
        final RateLimitPolicy bytes = limit(1 << 20, Duration.ofSeconds(1), 64 * 1024);
        assertThat(SubjectRate.block(bytes)).isEqualTo(64 * 1024);
        assertThat(SubjectRate.slack(bytes)).isEqualTo(128 * 1024);
        // At most one second of the rate whenever the rate is at least 2/s.
        for (long amount : new long[] {2, 7, 99, 1000, 12_345}) {
            final RateLimitPolicy l = limit(amount, Duration.ofSeconds(1), amount * 3);
            assertThat(SubjectRate.slack(l)).isLessThanOrEqualTo(amount);
        }
    }

    @Test
    void withoutRedisTheInstancesOwnBucketsDecide() {
        final RateLimitPolicy l = limit(1, Duration.ofMinutes(1), 2);
        final SubjectRate rate = new SubjectRate(local(l), null, l, "message_rate", "k");
        rate.opened("alice");
        assertThat(rate.tryTake("alice", 1)).isEqualTo(Take.TAKEN);
        assertThat(rate.tryTake("alice", 1)).isEqualTo(Take.TAKEN);
        assertThat(rate.tryTake("alice", 1)).isEqualTo(Take.OVER);
        assertThat(rate.tryTake("bob", 1)).isEqualTo(Take.TAKEN);
        rate.closed("alice");
    }

    @Test
    void aFirstConnectionPrefetchesABlockSoASlowRatesFirstMessagePasses() throws Exception {
        final RedisServer redis = redis();
        final RateLimitPolicy l = limit(30, Duration.ofMinutes(1), 1);
        final String key = key();
        final SubjectRate a = instance(redis, l, key, OnUnavailable.DENY);
        final SubjectRate b = instance(redis, l, key, OnUnavailable.DENY);
        a.opened("alice");
        await().atMost(Duration.ofSeconds(5)).until(() -> a.balance("alice") == 1);
        b.opened("alice");
        await().atMost(Duration.ofSeconds(5)).until(() -> !b.fetching("alice"));

        assertThat(a.tryTake("alice", 1)).isEqualTo(Take.TAKEN);
        // The one token of the burst went to a: b has nothing, and no credit at a rate under 2/s.
        assertThat(b.tryTake("alice", 1)).isEqualTo(Take.OVER);
        assertThat(a.tryTake("alice", 1)).isEqualTo(Take.OVER);
        assertThat(counted("message_rate")).isZero();
    }

    @Test
    void aFetchThatGetsFewerThanAskedLeavesNoCredit() throws Exception {
        final RedisServer redis = redis();
        // 4/s: block 2, credit 2; a token is due every 250 ms.
        final RateLimitPolicy l = limit(4, Duration.ofSeconds(1), 8);
        final String key = key();
        final RedisBuckets drain = buckets(redis, OnUnavailable.DENY);
        final SubjectRate a = instance(redis, l, key, OnUnavailable.DENY);
        await().until(drain::connected);
        // A token may come due between the drain and the fetch on a busy machine: then try another subject.
        for (int attempt = 0; ; attempt++) {
            final String subject = "alice" + attempt;
            drain.tryTakeUpTo("test", key + ":" + subject, l, 8)
                    .toCompletableFuture()
                    .get(5, TimeUnit.SECONDS);
            a.opened(subject);
            await().atMost(Duration.ofSeconds(5)).until(() -> !a.fetching(subject));
            if (a.balance(subject) == 0 || attempt == 10) {
                // The shared bucket was empty: the balance may not go into debt before the next token is due.
                assertThat(a.balance(subject)).isZero();
                assertThat(a.tryTake(subject, 1)).isEqualTo(Take.OVER);
                break;
            }
        }
    }

    @Test
    void theLastConnectionGivesTheUnspentBalanceBack() throws Exception {
        final RedisServer redis = redis();
        // 20/min: block 1; slow enough that refills do not blur the count.
        final RateLimitPolicy l = limit(20, Duration.ofMinutes(1), 10);
        final String key = key();
        final SubjectRate a = instance(redis, l, key, OnUnavailable.DENY);
        final RedisBuckets other = buckets(redis, OnUnavailable.DENY);
        a.opened("alice");
        a.opened("alice");
        await().atMost(Duration.ofSeconds(5)).until(() -> a.balance("alice") == 1);

        a.closed("alice");
        assertThat(a.size()).isEqualTo(1); // one connection still open: the allowance stays
        a.closed("alice");
        assertThat(a.size()).isZero();

        // All 10 are in the shared bucket again (the prefetched one given back).
        await().atMost(Duration.ofSeconds(5))
                .until(() -> other.tryTakeUpTo("test", key + ":alice", l, 10)
                                .toCompletableFuture()
                                .get(5, TimeUnit.SECONDS)
                        == 10);
    }

    @Test
    void threeInstancesTogetherStayWithinRateTimesWindowPlusBurstPlusSlack() throws Exception {
        final RedisServer redis = redis();
        final RateLimitPolicy l = limit(200, Duration.ofSeconds(1), 50);
        final String key = key();
        final List<SubjectRate> instances = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            final SubjectRate rate = instance(redis, l, key, OnUnavailable.DENY);
            rate.opened("alice");
            instances.add(rate);
        }
        final AtomicLong accepted = new AtomicLong();
        final AtomicLong refused = new AtomicLong();
        final long window = TimeUnit.SECONDS.toNanos(3);
        final long start = System.nanoTime();
        final List<Thread> senders = new ArrayList<>();
        for (SubjectRate rate : instances) {
            final Thread sender = new Thread(() -> {
                while (System.nanoTime() - start < window) {
                    if (rate.tryTake("alice", 1) == Take.TAKEN) {
                        accepted.incrementAndGet();
                    } else {
                        refused.incrementAndGet();
                    }
                    // About 2,000 attempts a second per instance: ten times the rate, spread over all three.
                    LockSupport.parkNanos(500_000);
                }
            });
            sender.start();
            senders.add(sender);
        }
        for (Thread sender : senders) {
            sender.join();
        }
        final double seconds = (System.nanoTime() - start) / 1e9;
        final double bound = 200 * seconds + 50 + 3 * SubjectRate.slack(l);
        assertThat((double) accepted.get()).isLessThanOrEqualTo(bound);
        // Not far below the rate either: the blocks keep every instance supplied.
        assertThat((double) accepted.get()).isGreaterThanOrEqualTo(0.8 * 200 * seconds);
        assertThat(refused.get()).isPositive();
        assertThat(counted("message_rate")).isZero();
    }

    @Test
    void whileRedisIsDownOnUnavailableDecidesAfterTheBalanceIsSpent() throws Exception {
        final RedisServer redis = redis();
        final RateLimitPolicy l = limit(2, Duration.ofMinutes(1), 2);
        final String key = key();
        final SubjectRate local = instance(redis, l, key, OnUnavailable.LOCAL);
        final SubjectRate allow = instance(redis, l, key, OnUnavailable.ALLOW);
        final SubjectRate deny = instance(redis, l, key, OnUnavailable.DENY);
        redis.kill();

        // The first take of each finds no balance (and no credit at this rate) and starts a fetch,
        // which fails: from then on onUnavailable decides.
        for (SubjectRate rate : List.of(local, allow, deny)) {
            assertThat(rate.tryTake("bob", 1)).isEqualTo(Take.OVER);
            await().atMost(Duration.ofSeconds(2)).until(() -> !rate.fetching("bob"));
        }
        // local: this instance's own bucket, holding the whole limit.
        assertThat(local.tryTake("bob", 1)).isEqualTo(Take.TAKEN);
        assertThat(local.tryTake("bob", 1)).isEqualTo(Take.TAKEN);
        assertThat(local.tryTake("bob", 1)).isEqualTo(Take.OVER);
        for (int i = 0; i < 5; i++) {
            assertThat(allow.tryTake("bob", 1)).isEqualTo(Take.TAKEN);
        }
        assertThat(deny.tryTake("bob", 1)).isEqualTo(Take.UNAVAILABLE);
        assertThat(counted("message_rate")).isGreaterThanOrEqualTo(3);

        // Redis is back: the next fetch after the retry interval resumes sharing.
        redis.start();
        await().atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(100))
                .until(() -> deny.tryTake("carol", 1) == Take.TAKEN);
    }

    private String key() {
        return "wsguard:test:subject:" + NEXT.incrementAndGet();
    }

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir).start();
        closeAfter.add(redis);
        return redis;
    }

    private RedisBuckets buckets(RedisServer redis, OnUnavailable onUnavailable) {
        final RedisStore store =
                RedisStore.connect(RedisPolicy.of(redis.uri(), onUnavailable), registry, Duration.ofMillis(200));
        closeAfter.add(store);
        return new RedisBuckets(store);
    }

    /** One instance: its own store, its own allowance, its own local buckets. */
    private SubjectRate instance(RedisServer redis, RateLimitPolicy l, String key, OnUnavailable onUnavailable) {
        final RedisBuckets shared = buckets(redis, onUnavailable);
        await().atMost(Duration.ofSeconds(10)).until(shared::connected);
        return new SubjectRate(local(l), shared, l, "message_rate", key);
    }

    private static KeyedBuckets local(RateLimitPolicy l) {
        return new KeyedBuckets(l.burst(), l.rate().amount(), l.rate().per());
    }

    private double counted(String feature) {
        // One counter per onUnavailable: the three instances here differ in it.
        return registry.find("wsguard.ratelimit.store.fallbacks").tag("feature", feature).counters().stream()
                .mapToDouble(Counter::count)
                .sum();
    }
}
