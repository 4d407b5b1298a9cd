package io.wsguard.limit;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;
import io.github.bucket4j.TimeMeter;
import io.github.bucket4j.local.SynchronizationStrategy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One local Bucket4j token bucket per key (a client's IP, a subject), all with the same limit; used
 * for {@code limits.handshakes.perIp} and meant for per-subject message rates too.
 *
 * <p>The map is bounded and cleans itself. A bucket that has refilled to its capacity is worth
 * nothing (a new bucket would start full too), so such buckets are dropped by a sweep every
 * {@code sweepInterval}, run by whichever caller comes first after it is due. At {@code maxKeys}
 * keys an insert first drops the full buckets and, when that is not enough, the fullest ones (the
 * clients that have spent least recently), down to 99% of the cap, so the next 1% of new keys
 * insert without scanning. Refusing new keys instead would let anyone who can spread requests over
 * enough addresses lock out everyone else; evicting a partly spent bucket only forgives that
 * client what it spent.
 *
 * <p>A bucket dropped by a sweep in the instant another thread takes a token from it loses that
 * token: the limit may let that one request more through, never fewer.
 *
 * <p>Thread-safe and non-blocking except for the rare eviction at the cap, which holds a lock for
 * one scan of the map (about a millisecond per 100,000 keys).
 */
public final class KeyedBuckets {

    /** The default hard cap on keys: about 20 MB of buckets at most. */
    public static final int DEFAULT_MAX_KEYS = 100_000;

    private static final Duration DEFAULT_SWEEP = Duration.ofMinutes(1);

    private final long capacity;
    private final Bandwidth bandwidth;
    private final int maxKeys;
    private final int evictTo;
    private final TimeMeter clock;
    private final long sweepNanos;
    private final ConcurrentHashMap<String, Bucket> buckets = new ConcurrentHashMap<>();
    private final AtomicLong nextSweep;
    private final ReentrantLock evicting = new ReentrantLock();

    /**
     * {@code capacity} tokens per key, refilled greedily at {@code refillTokens} per {@code period}.
     *
     * @throws IllegalArgumentException when Bucket4j cannot represent the limit (e.g. faster than 1 token/ns)
     */
    public KeyedBuckets(long capacity, long refillTokens, Duration period) {
        this(capacity, refillTokens, period, DEFAULT_MAX_KEYS, DEFAULT_SWEEP, TimeMeter.SYSTEM_NANOTIME);
    }

    /** As above, with the cap, the sweep interval and the clock chosen (tests). */
    public KeyedBuckets(
            long capacity, long refillTokens, Duration period, int maxKeys, Duration sweepInterval, TimeMeter clock) {
        if (maxKeys < 1) {
            throw new IllegalArgumentException("maxKeys: " + maxKeys + " (expected: > 0)");
        }
        this.capacity = capacity;
        this.bandwidth = Bandwidth.builder()
                .capacity(capacity)
                .refillGreedy(refillTokens, period)
                .build();
        this.maxKeys = maxKeys;
        this.evictTo = Math.max(0, maxKeys - Math.max(1, maxKeys / 100));
        this.clock = clock;
        this.sweepNanos = sweepInterval.toNanos();
        this.nextSweep = new AtomicLong(clock.currentTimeNanos() + sweepNanos);
        newBucket(); // Bucket4j validates the limit when a bucket is built: fail now, not on a request.
    }

    /**
     * Takes {@code tokens} from {@code key}'s bucket (a new key starts full). The probe says whether
     * they were taken and, if not, {@link ConsumptionProbe#getNanosToWaitForRefill()}.
     */
    public ConsumptionProbe tryConsume(String key, long tokens) {
        return bucket(key).tryConsumeAndReturnRemaining(tokens);
    }

    private Bucket bucket(String key) {
        sweepIfDue();
        Bucket bucket = buckets.get(key);
        if (bucket == null) {
            if (buckets.size() >= maxKeys) {
                makeRoom();
            }
            bucket = buckets.computeIfAbsent(key, k -> newBucket());
        }
        return bucket;
    }

    /**
     * Takes {@code tokens} from {@code key}'s bucket if it holds them (a new key starts full); allocates nothing for a
     * known key.
     */
    public boolean tryTake(String key, long tokens) {
        return bucket(key).tryConsume(tokens);
    }

    /** How many keys have a bucket now. */
    public int size() {
        return buckets.size();
    }

    /** Drops every bucket that has refilled to capacity; returns how many were dropped. */
    public int sweep() {
        final int before = buckets.size();
        // removeIf on the values view removes an entry only if it still maps to the bucket tested.
        buckets.values().removeIf(this::isFull);
        return before - buckets.size();
    }

    private void sweepIfDue() {
        final long due = nextSweep.get();
        final long now = clock.currentTimeNanos();
        if (now - due >= 0 && nextSweep.compareAndSet(due, now + sweepNanos)) {
            sweep();
        }
    }

    private void makeRoom() {
        evicting.lock();
        try {
            if (buckets.size() < maxKeys) {
                return; // another thread made room while this one waited
            }
            sweep();
            final int excess = buckets.size() - evictTo;
            if (excess <= 0) {
                return;
            }
            final List<Candidate> candidates = new ArrayList<>(buckets.size());
            for (Map.Entry<String, Bucket> e : buckets.entrySet()) {
                candidates.add(
                        new Candidate(e.getKey(), e.getValue(), e.getValue().getAvailableTokens()));
            }
            candidates.sort(Comparator.comparingLong(Candidate::tokens).reversed());
            for (int i = 0; i < excess && i < candidates.size(); i++) {
                buckets.remove(candidates.get(i).key(), candidates.get(i).bucket());
            }
        } finally {
            evicting.unlock();
        }
    }

    private boolean isFull(Bucket bucket) {
        return bucket.getAvailableTokens() >= capacity;
    }

    private Bucket newBucket() {
        // Synchronized updates the state in place; the lock-free default copies it on every take, an
        // allocation per message for the per-subject limit. A key's lock is rarely contended.
        return Bucket.builder()
                .addLimit(bandwidth)
                .withCustomTimePrecision(clock)
                .withSynchronizationStrategy(SynchronizationStrategy.SYNCHRONIZED)
                .build();
    }

    private record Candidate(String key, Bucket bucket, long tokens) {}
}
