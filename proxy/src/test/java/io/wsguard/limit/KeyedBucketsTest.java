package io.wsguard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.github.bucket4j.ConsumptionProbe;
import io.github.bucket4j.TimeMeter;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class KeyedBucketsTest {

    /** A clock the test moves by hand. */
    static final class ManualClock implements TimeMeter {
        final AtomicLong nanos = new AtomicLong(1_000_000_000L);

        void advance(Duration d) {
            nanos.addAndGet(d.toNanos());
        }

        @Override
        public long currentTimeNanos() {
            return nanos.get();
        }

        @Override
        public boolean isWallClockBased() {
            return false;
        }
    }

    private final ManualClock clock = new ManualClock();

    @Test
    void burstPassesThenRefusesWithTheWaitUntilTheNextToken() {
        final KeyedBuckets buckets = new KeyedBuckets(3, 1, Duration.ofSeconds(2), 100, Duration.ofMinutes(1), clock);
        for (int i = 0; i < 3; i++) {
            assertThat(buckets.tryConsume("a", 1).isConsumed()).isTrue();
        }
        final ConsumptionProbe refused = buckets.tryConsume("a", 1);
        assertThat(refused.isConsumed()).isFalse();
        assertThat(refused.getNanosToWaitForRefill()).isEqualTo(TimeUnit.SECONDS.toNanos(2));
        // Another key has its own bucket.
        assertThat(buckets.tryConsume("b", 1).isConsumed()).isTrue();
        clock.advance(Duration.ofSeconds(2));
        assertThat(buckets.tryConsume("a", 1).isConsumed()).isTrue();
        assertThat(buckets.tryConsume("a", 1).isConsumed()).isFalse();
    }

    @Test
    void sweepDropsOnlyBucketsThatRefilledToFull() {
        final KeyedBuckets buckets = new KeyedBuckets(2, 1, Duration.ofSeconds(1), 100, Duration.ofMinutes(1), clock);
        buckets.tryConsume("idle", 1);
        clock.advance(Duration.ofSeconds(1)); // "idle" is full again
        buckets.tryConsume("busy", 2);
        assertThat(buckets.size()).isEqualTo(2);
        assertThat(buckets.sweep()).isEqualTo(1);
        assertThat(buckets.size()).isEqualTo(1);
        // The busy one kept what it spent.
        assertThat(buckets.tryConsume("busy", 1).isConsumed()).isFalse();
    }

    @Test
    void sweepsByItselfOnceDue() {
        final KeyedBuckets buckets = new KeyedBuckets(2, 2, Duration.ofSeconds(1), 100, Duration.ofSeconds(10), clock);
        for (int i = 0; i < 50; i++) {
            buckets.tryConsume("10.0.0." + i, 1);
        }
        assertThat(buckets.size()).isEqualTo(50);
        clock.advance(Duration.ofSeconds(10));
        buckets.tryConsume("10.0.1.1", 1);
        assertThat(buckets.size()).isEqualTo(1);
    }

    @Test
    void atTheCapEvictsTheFullestInsteadOfRefusingNewKeys() {
        final KeyedBuckets buckets = new KeyedBuckets(10, 1, Duration.ofHours(1), 200, Duration.ofHours(1), clock);
        // 200 keys that all spent something (none full), "heavy" spent everything.
        buckets.tryConsume("heavy", 10);
        for (int i = 1; i < 200; i++) {
            buckets.tryConsume("k" + i, 1);
        }
        assertThat(buckets.size()).isEqualTo(200);
        assertThat(buckets.tryConsume("newcomer", 1).isConsumed()).isTrue();
        assertThat(buckets.size()).isLessThanOrEqualTo(200);
        // The client that spent most is the last to be forgiven.
        assertThat(buckets.tryConsume("heavy", 1).isConsumed()).isFalse();
        for (int i = 0; i < 1000; i++) {
            buckets.tryConsume("flood" + i, 1);
            assertThat(buckets.size()).isLessThanOrEqualTo(200);
        }
    }

    @Test
    void aLimitBucket4jCannotRepresentFailsAtConstruction() {
        assertThrows(IllegalArgumentException.class, () -> new KeyedBuckets(1, 2_000_000_000L, Duration.ofNanos(1)));
    }
}
