package io.wsguard.limit;

import io.github.bucket4j.TimeMeter;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One per-subject rate of one route ({@code limits.messages.perSubject} or
 * {@code limits.bytes.perSubject}), decided synchronously on the thread that delivers the message:
 * never a Redis call per message, never a wait.
 *
 * <p>With {@code rateLimitStore.type: local} it is this instance's {@link KeyedBuckets}, each
 * subject's bucket holding the whole limit. With {@code type: redis} the limit is one Bucket4j
 * bucket per subject in Redis, shared by every instance, and each instance spends an
 * <em>allowance</em> per subject that it fills from that bucket in blocks, asynchronously:
 * <ul>
 *   <li>block {@code B = clamp(floor(rate per second / 2), 1, burst)};</li>
 *   <li>a message takes from the local balance, which may go into debt by up to the credit
 *       {@code C = B} when {@code 2B <= rate per second} ({@code C = 0} for slower rates), so that
 *       a message never waits for Redis (while a new allowance's first fetch is in flight, the
 *       debt may reach {@code B} even where {@code C = 0}, so that a first message right after
 *       the handshake passes);</li>
 *   <li>when the balance falls under {@code B/2} and no fetch is in flight, one async fetch of
 *       {@code B - balance} tokens starts ({@link RedisBuckets#tryTakeUpTo}); a fetch that gets
 *       fewer than asked marks the subject empty until its next token is due: no credit then, a
 *       message passes only on what the balance holds;</li>
 *   <li>a subject's first connection on this instance prefetches a block ({@link #opened}), so
 *       that the first message of a slow rate does not find an empty balance; its last connection
 *       gives the unspent balance back ({@link #closed}).</li>
 * </ul>
 * What an instance accepts in a window is what it fetched in it plus its balance at the start
 * (at most {@code B}) minus its balance at the end (at least {@code -max(C, B)}), and what all
 * instances fetch is bounded by the shared bucket: over any window, a subject's accepted messages
 * across all instances are at most {@code rate x window + burst + N x slack}, with
 * {@code slack = B + max(C, B)} ({@link #slack}): at most one second of the rate from 2/s up, and
 * 2 messages for slower rates. A message larger than {@code B + C} (bytes) is never accepted
 * across instances: it could not be paid without waiting.
 *
 * <p>While Redis cannot answer (a fetch failed), the balance still left is spent, then
 * {@code onUnavailable} decides: {@code local}, the instance's own buckets as with
 * {@code type: local}; {@code allow}, everything passes; {@code deny}, {@link Take#UNAVAILABLE}.
 * A failed fetch counts as a fallback under the rate's feature name; it is retried at most every
 * {@link #RETRY}, and sharing resumes with the first one that succeeds.
 *
 * <p>Thread-safe. A subject's allowance is guarded by its own monitor, which only the subject's
 * connections on this instance and its fetches contend for; a take allocates nothing.
 */
public final class SubjectRate {

    /** How a take ended. */
    public enum Take {
        /** Within the rate. */
        TAKEN,
        /** Over the rate. */
        OVER,
        /** Redis cannot decide and {@code onUnavailable: deny}: refused, but not the client's doing. */
        UNAVAILABLE
    }

    /** How soon a failed fetch is tried again, per subject. */
    static final Duration RETRY = Duration.ofMillis(500);

    private static final long SWEEP_NANOS = TimeUnit.MINUTES.toNanos(1);

    private final KeyedBuckets local;
    private final RedisBuckets shared;
    private final RateLimitPolicy limit;
    private final String feature;
    private final String keyPrefix;
    private final long block;
    private final long credit;
    private final long nanosPerToken;
    private final TimeMeter clock;
    private final ConcurrentHashMap<String, Allowance> allowances = new ConcurrentHashMap<>();
    private final AtomicLong nextSweep;

    /**
     * @param local this instance's buckets for the limit: the decision with {@code type: local},
     *     the fallback with {@code onUnavailable: local}
     * @param shared the Redis buckets, or null for {@code type: local}
     * @param feature what fallbacks count as ({@code message_rate}, {@code byte_rate})
     * @param key the limit's name in Redis, which names the route and the limit too, so that a
     *     changed limit starts afresh on every instance
     */
    public SubjectRate(
            KeyedBuckets local,
            RedisBuckets shared,
            RateLimitPolicy limit,
            String feature,
            String key,
            TimeMeter clock) {
        this.local = local;
        this.shared = shared;
        this.limit = limit;
        this.feature = feature;
        this.keyPrefix = key + ":";
        this.block = block(limit);
        this.credit = credit(limit);
        this.nanosPerToken =
                Math.max(1, ceilDiv(limit.rate().per().toNanos(), limit.rate().amount()));
        this.clock = clock;
        this.nextSweep = new AtomicLong(clock.currentTimeNanos() + SWEEP_NANOS);
    }

    /** With the system clock. */
    public SubjectRate(KeyedBuckets local, RedisBuckets shared, RateLimitPolicy limit, String feature, String key) {
        this(local, shared, limit, feature, key, TimeMeter.SYSTEM_NANOTIME);
    }

    /** The block {@code B} an instance fetches: half a second of the rate, at least 1, at most the burst. */
    public static long block(RateLimitPolicy limit) {
        final long half = (long) Math.floor(perSecond(limit) / 2);
        return Math.max(1, Math.min(half, limit.burst()));
    }

    /**
     * The credit {@code C} a balance may go into debt by: {@code B} when two blocks fit in a second of
     * the rate, else 0.
     */
    public static long credit(RateLimitPolicy limit) {
        final long b = block(limit);
        return 2.0 * b <= perSecond(limit) ? b : 0;
    }

    /**
     * The most one instance adds to the shared limit in any window: {@code B + max(C, B)}, its
     * balance at the start plus its debt at the end (up to a block while a prefetch is in flight).
     * Equals {@code B + C} from 2/s up, which is at most one second of the rate; 2 for slower rates.
     */
    public static long slack(RateLimitPolicy limit) {
        return block(limit) + Math.max(credit(limit), block(limit));
    }

    private static double perSecond(RateLimitPolicy limit) {
        return limit.rate().amount() * 1e9 / limit.rate().per().toNanos();
    }

    /** Whether the limit is shared with other instances ({@code type: redis}). */
    public boolean shared() {
        return shared != null;
    }

    public RateLimitPolicy limit() {
        return limit;
    }

    /** Takes {@code tokens} (one message, or a message's bytes) for {@code subject}. */
    public Take tryTake(String subject, long tokens) {
        if (shared == null) {
            return local.tryTake(subject, tokens) ? Take.TAKEN : Take.OVER;
        }
        final long now = clock.currentTimeNanos();
        sweepIfDue(now);
        Allowance allowance = allowances.get(subject);
        if (allowance == null) {
            allowance = allowances.computeIfAbsent(subject, s -> new Allowance());
        }
        Take result;
        long fetch = 0;
        synchronized (allowance) {
            allowance.lastUsed = now;
            if (allowance.balance >= tokens) {
                allowance.balance -= tokens;
                result = Take.TAKEN;
            } else if (allowance.unavailable) {
                result = null; // onUnavailable decides, below, outside the monitor
            } else if (allowance.emptyUntil - now > 0 || allowance.balance - tokens < -creditNow(allowance)) {
                result = Take.OVER;
            } else {
                allowance.balance -= tokens;
                result = Take.TAKEN;
            }
            fetch = fetchIfDue(allowance, now);
        }
        if (fetch > 0) {
            fetch(subject, allowance, fetch);
        }
        return result != null ? result : fallback(subject, tokens);
    }

    private Take fallback(String subject, long tokens) {
        return switch (shared.onUnavailable()) {
            case LOCAL -> local.tryTake(subject, tokens) ? Take.TAKEN : Take.OVER;
            case ALLOW -> Take.TAKEN;
            case DENY -> Take.UNAVAILABLE;
        };
    }

    /**
     * One of {@code subject}'s connections opened on this instance: the first one prefetches a
     * block. Pair each with one {@link #closed}.
     */
    public void opened(String subject) {
        if (shared == null) {
            return;
        }
        final long now = clock.currentTimeNanos();
        while (true) {
            final Allowance allowance = allowances.computeIfAbsent(subject, s -> new Allowance());
            long fetch;
            synchronized (allowance) {
                if (allowance.retired) {
                    // Its last connection closed in between: start a new one.
                    allowances.remove(subject, allowance);
                    continue;
                }
                allowance.connections++;
                allowance.lastUsed = now;
                fetch = fetchIfDue(allowance, now);
            }
            if (fetch > 0) {
                fetch(subject, allowance, fetch);
            }
            return;
        }
    }

    /** One of {@code subject}'s connections on this instance closed: the last one gives the unspent balance back. */
    public void closed(String subject) {
        if (shared == null) {
            return;
        }
        final Allowance allowance = allowances.get(subject);
        if (allowance == null) {
            return;
        }
        synchronized (allowance) {
            // In debt: kept (swept once idle long enough to have repaid it), so that the next
            // connection starts from the debt and not from a fresh prefetch credit.
            if (--allowance.connections > 0 || allowance.balance < 0) {
                return;
            }
        }
        retire(subject, allowance);
    }

    private void retire(String subject, Allowance allowance) {
        final long unspent;
        synchronized (allowance) {
            if (allowance.retired) {
                return;
            }
            allowance.retired = true;
            unspent = Math.max(0, allowance.balance);
            allowance.balance = 0;
        }
        allowances.remove(subject, allowance);
        giveBack(subject, unspent);
    }

    /** How many subjects have an allowance on this instance (tests, metrics). */
    public int size() {
        return allowances.size();
    }

    /** {@code subject}'s balance on this instance, or 0 without an allowance (tests). */
    long balance(String subject) {
        final Allowance allowance = allowances.get(subject);
        if (allowance == null) {
            return 0;
        }
        synchronized (allowance) {
            return allowance.balance;
        }
    }

    /** Whether a fetch for {@code subject} is in flight (tests). */
    public boolean fetching(String subject) {
        final Allowance allowance = allowances.get(subject);
        if (allowance == null) {
            return false;
        }
        synchronized (allowance) {
            return allowance.fetching;
        }
    }

    /**
     * Under the allowance's monitor: how far the balance may go into debt now. While a new
     * allowance's first fetch (the prefetch of {@link #opened}) is in flight, up to a block: a
     * subject's first message right after its handshake must not be refused only because Redis has
     * not answered yet (without credit at rates under 2/s it would be). That debt outlives the
     * connection ({@link #closed} keeps an allowance in debt), so reconnecting does not renew it.
     */
    private long creditNow(Allowance allowance) {
        return allowance.prefetching ? Math.max(credit, block) : credit;
    }

    /** Under the allowance's monitor: how many tokens to fetch now, 0 for none; marks the fetch in flight. */
    private long fetchIfDue(Allowance allowance, long now) {
        if (allowance.fetching || allowance.retired || 2 * allowance.balance >= block) {
            return 0;
        }
        if (allowance.unavailable ? now - allowance.retryAt < 0 : allowance.emptyUntil - now > 0) {
            return 0;
        }
        allowance.fetching = true;
        allowance.prefetching = !allowance.fetched;
        allowance.fetched = true;
        return block - allowance.balance;
    }

    private void fetch(String subject, Allowance allowance, long wanted) {
        shared.tryTakeUpTo(feature, keyPrefix + subject, limit, wanted).whenComplete((got, failure) -> {
            final long now = clock.currentTimeNanos();
            final boolean retired;
            synchronized (allowance) {
                allowance.fetching = false;
                allowance.prefetching = false;
                retired = allowance.retired;
                if (failure != null) {
                    // Counted as a fallback by the store; onUnavailable decides until a fetch succeeds.
                    allowance.unavailable = true;
                    allowance.retryAt = now + RETRY.toNanos();
                    return;
                }
                allowance.unavailable = false;
                if (!retired) {
                    allowance.balance += got;
                }
                // The shared bucket ran dry: no more credit until its next token is due.
                allowance.emptyUntil = got < wanted ? now + nanosPerToken : now;
            }
            if (retired) {
                giveBack(subject, got);
            }
        });
    }

    private void giveBack(String subject, long tokens) {
        if (tokens > 0) {
            // Best effort: tokens that do not make it back are only this instance's forgone share.
            shared.giveBack(feature, keyPrefix + subject, limit, tokens);
        }
    }

    /**
     * Allowances that no open connection holds (messages of a subject whose connection was not
     * {@linkplain #opened opened} here) and that were idle for a minute are retired, once a minute.
     */
    private void sweepIfDue(long now) {
        final long due = nextSweep.get();
        if (now - due < 0 || !nextSweep.compareAndSet(due, now + SWEEP_NANOS)) {
            return;
        }
        allowances.forEach((subject, allowance) -> {
            final boolean idle;
            synchronized (allowance) {
                final long repaid = allowance.balance < 0 ? -allowance.balance * nanosPerToken : 0;
                idle = allowance.connections <= 0
                        && !allowance.fetching
                        && now - allowance.lastUsed > Math.max(SWEEP_NANOS, repaid);
            }
            if (idle) {
                retire(subject, allowance);
            }
        });
    }

    private static long ceilDiv(long a, long b) {
        return -Math.floorDiv(-a, b);
    }

    /** One subject's allowance on this instance; every field is guarded by its monitor. */
    private static final class Allowance {
        long balance;
        boolean fetching;
        /** The fetch in flight is the allowance's first: a block of credit until it lands. */
        boolean prefetching;
        /** A fetch was ever started for it. */
        boolean fetched;
        /** A fetch got fewer tokens than asked: no credit before this nanoTime. */
        long emptyUntil;
        /** The last fetch failed: onUnavailable decides once the balance is spent. */
        boolean unavailable;
        /** When a failed fetch may be tried again. */
        long retryAt;

        int connections;
        long lastUsed;
        /** Its last connection closed: it was removed, and its unspent balance given back. */
        boolean retired;
    }
}
