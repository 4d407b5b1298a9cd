package io.wsguard.cluster;

import static java.util.Objects.requireNonNull;

import io.lettuce.core.ScriptOutputType;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The revocations in force ({@code POST /admin/revoke}): subjects and token ids ({@code jti}) whose
 * handshakes are refused with 401 {@code token_revoked} until their TTL ends, and whose open
 * connections are closed with 1008 when the revocation arrives.
 *
 * <p>The handshake asks the mirror in this object, a map in memory: no Redis call per handshake.
 * With a Redis store the mirror is shared by every instance:
 * <ul>
 *   <li>Redis keeps them in the hash {@value #KEY}: field {@code sub:VALUE} or {@code jti:VALUE},
 *       value {@code UNTIL|BY} (UNTIL in milliseconds of Redis's own clock, BY the instance that
 *       asked). One script merges and reads it atomically ({@link #SYNC}): an entry is only ever
 *       extended, never shortened, expired fields are dropped, and the key expires with its last field.
 *   <li>A revocation is written to Redis and announced on {@link ClusterEvents#CHANNEL} as
 *       {@code revoke}; every instance adds it to its mirror and closes its matching connections.
 *   <li>At every (re)connect and every heartbeat each instance writes its whole mirror back and reads
 *       the hash: a Redis restarted empty gets every revocation in force back from the instances,
 *       and an instance that missed an announcement (pub/sub delivers at most once) learns it within
 *       one heartbeat.
 *   <li>Remaining times travel, never instants: instances whose clocks disagree still agree on
 *       when a revocation ends (give or take the trip).
 * </ul>
 * While Redis is unavailable a revocation applies on this instance and reaches the others once Redis
 * answers again (the next heartbeat writes it); the answer says so.
 *
 * <p>Thread-safe. One per running proxy.
 */
public final class Revocations {

    private static final Logger LOG = LoggerFactory.getLogger(Revocations.class);

    /** The Redis hash of the revocations in force. */
    public static final String KEY = "wsguard:revoked";
    /** The longest TTL a revocation may have: past it, revoke at the identity provider instead. */
    public static final Duration MAX_TTL = Duration.ofDays(30);
    /** The shortest TTL (shorter ones would be over before they reached the other instances). */
    public static final Duration MIN_TTL = Duration.ofSeconds(1);

    /** The fallback counter's feature, and the pub/sub event's type. */
    static final String FEATURE = "revocation";

    static final String EVENT = "revoke";

    /**
     * KEYS[1] the hash; ARGV triples: field, remaining milliseconds, instance id. Merges each triple
     * (a field's expiry only grows), drops expired fields, lets the key expire with its last field,
     * and returns every field in force as triples: field, remaining milliseconds, instance id. Redis's
     * clock decides what has expired, never an instance's.
     */
    static final String SYNC = """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            for i = 1, #ARGV, 3 do
              local untilMs = now + tonumber(ARGV[i + 1])
              local old = redis.call('HGET', KEYS[1], ARGV[i])
              local oldUntil = 0
              if old then oldUntil = tonumber(string.match(old, '^(%d+)')) or 0 end
              -- A second of slack: the mirror written back at every heartbeat must not creep by its trip's time.
              if untilMs > oldUntil + 1000 then
                redis.call('HSET', KEYS[1], ARGV[i], string.format('%.0f', untilMs) .. '|' .. ARGV[i + 2])
              end
            end
            local all = redis.call('HGETALL', KEYS[1])
            local out = {}
            local latest = 0
            for i = 1, #all, 2 do
              local untilText, by = string.match(all[i + 1], '^(%d+)|(.*)$')
              local untilMs = tonumber(untilText)
              if untilMs == nil or untilMs <= now then
                redis.call('HDEL', KEYS[1], all[i])
              else
                if untilMs > latest then latest = untilMs end
                out[#out + 1] = all[i]
                out[#out + 1] = string.format('%.0f', untilMs - now)
                out[#out + 1] = by
              end
            end
            if latest > 0 then redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', latest)) end
            return out
            """;

    /** What a revocation names. */
    public enum Kind {
        /** The JWT {@code sub}: every token of that subject. */
        SUB,
        /** The JWT {@code jti}: that one token. */
        JTI;

        /** {@code sub} or {@code jti}: the query parameter, the Redis field's prefix, the listing's kind. */
        public String field() {
            return name().toLowerCase(Locale.ROOT);
        }

        static Kind ofField(String field) {
            return switch (field) {
                case "sub" -> SUB;
                case "jti" -> JTI;
                default -> null;
            };
        }
    }

    /**
     * One revocation in force on this instance.
     *
     * @param until when it ends, by this instance's clock
     * @param deadlineNanos the same, as a {@link System#nanoTime()}: what the checks compare with
     * @param by the id of the instance that was asked
     */
    public record InForce(Kind kind, String value, Instant until, long deadlineNanos, String by) {

        /** Milliseconds left, at least 0. */
        public long remainingMillis() {
            return Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime()));
        }

        /** For the audit line of a refused handshake: never a token, only the revoked id. */
        public String describe() {
            return kind.field() + " " + value + " revoked until " + until + " (asked on instance " + by + ")";
        }
    }

    /**
     * What {@link #revoke} did.
     *
     * @param revocation the revocation now in force (an earlier, longer one of the same id stays)
     * @param closed connections closed on this instance
     * @param subscribers how many subscribers Redis delivered the announcement to, this instance
     *     included; null when it went to no other instance
     * @param localOnly why only this instance acted, or null when every instance was told
     */
    public record Outcome(InForce revocation, int closed, Long subscribers, String localOnly) {}

    /** Closes this instance's open connections of a revoked subject or token id; returns how many. */
    @FunctionalInterface
    public interface Closer {
        int close(Kind kind, String value, String detail);
    }

    private final Map<String, InForce> subjects = new ConcurrentHashMap<>();
    private final Map<String, InForce> tokenIds = new ConcurrentHashMap<>();
    private final String instanceId;
    private final RedisStore store;
    private final ClusterEvents events;
    private final Executor executor;
    private final Closer closer;

    private Revocations(String instanceId, RedisStore store, ClusterEvents events, Executor executor, Closer closer) {
        this.instanceId = instanceId;
        this.store = store;
        this.events = events;
        this.executor = executor;
        this.closer = requireNonNull(closer, "closer");
    }

    /** Revocations on this instance alone ({@code rateLimitStore.type: local}). */
    public static Revocations local(Closer closer) {
        return new Revocations(RedisStore.newInstanceId(), null, null, Runnable::run, closer);
    }

    /**
     * Revocations shared through {@code events}' Redis: read and written back at every connect and
     * heartbeat, announced on the channel. What Redis tells is applied on {@code executor}.
     */
    public static Revocations shared(RedisStore store, ClusterEvents events, Executor executor, Closer closer) {
        final Revocations revocations =
                new Revocations(store.instanceId(), requireNonNull(store), requireNonNull(events), executor, closer);
        events.on(EVENT, revocations::announced);
        store.onConnected(revocations::sync);
        store.everyHeartbeat(revocations::sync);
        return revocations;
    }

    /** Whether revocations reach other instances (a Redis store), available or not right now. */
    public boolean shared() {
        return store != null;
    }

    /**
     * The revocation in force for this subject or token id, or null: what the handshake asks, from
     * memory, on a Jetty thread. Either may be null.
     */
    public InForce find(String subject, String tokenId) {
        InForce found = subject == null ? null : inForce(subjects, subject);
        if (found == null && tokenId != null) {
            found = inForce(tokenIds, tokenId);
        }
        return found;
    }

    /** Every revocation in force, soonest to end first. */
    public List<InForce> inForce() {
        final List<InForce> all = new ArrayList<>();
        for (Map<String, InForce> map : List.of(subjects, tokenIds)) {
            for (InForce entry : map.values()) {
                if (inForce(map, entry.value()) != null) {
                    all.add(entry);
                }
            }
        }
        all.sort(Comparator.comparingLong(entry -> entry.deadlineNanos() - System.nanoTime()));
        return all;
    }

    /**
     * Revokes {@code value} for {@code ttl}: in force here at once, this instance's matching
     * connections closed, then written to Redis and announced to every instance. The stage never
     * fails: while Redis is unavailable it completes with what this instance did and why only it.
     * No caller waits on Redis: the stage completes on Lettuce's thread.
     */
    public CompletionStage<Outcome> revoke(Kind kind, String value, Duration ttl) {
        requireNonNull(kind, "kind");
        requireNonNull(value, "value");
        if (ttl.compareTo(MIN_TTL) < 0 || ttl.compareTo(MAX_TTL) > 0) {
            throw new IllegalArgumentException("ttl: " + ttl + " (expected: " + MIN_TTL + " to " + MAX_TTL + ")");
        }
        learn(kind, value, ttl.toMillis(), instanceId);
        final int closed = closer.close(kind, value, "token revoked by operator (" + kind.field() + "=" + value + ")");
        if (store == null) {
            return CompletableFuture.completedStage(new Outcome(
                    current(kind, value), closed, null, "rateLimitStore is local: there is no other instance to tell"));
        }
        final InForce entry = current(kind, value);
        return write(FEATURE, List.of(entry))
                .thenCompose(ignored -> {
                    final InForce now = current(kind, value);
                    return events.publish(
                                    FEATURE,
                                    EVENT,
                                    Map.of(
                                            "kind", kind.field(),
                                            "value", value,
                                            "ttlMs", Long.toString(now.remainingMillis()),
                                            "by", now.by()))
                            .thenApply(subscribers -> new Outcome(now, closed, subscribers, null));
                })
                .exceptionally(failure -> new Outcome(
                        current(kind, value),
                        closed,
                        null,
                        "Redis unavailable (" + store.lastFailure() + "): the other instances were not told;"
                                + " this instance writes it to Redis once Redis answers again"));
    }

    /** The entry of {@code kind}/{@code value}, just put in force (it cannot expire in between: the TTL is ≥ 1 s). */
    private InForce current(Kind kind, String value) {
        return map(kind).get(value);
    }

    /** Writes the mirror to Redis and takes in what Redis has: every connect and heartbeat. */
    private void sync() {
        write(null, inForce()).exceptionally(failure -> {
            // Counted and logged by the store; the next heartbeat tries again.
            return null;
        });
    }

    /** Merges {@code entries} into Redis's hash and applies what it holds; the stage fails when Redis cannot answer. */
    private CompletionStage<Void> write(String feature, List<InForce> entries) {
        final String[] args = new String[entries.size() * 3];
        int i = 0;
        for (InForce entry : entries) {
            args[i++] = entry.kind().field() + ":" + entry.value();
            args[i++] = Long.toString(entry.remainingMillis());
            args[i++] = entry.by();
        }
        return store.<List<Object>>call(
                        feature, redis -> redis.eval(SYNC, ScriptOutputType.MULTI, new String[] {KEY}, args))
                .thenAcceptAsync(this::apply, executor);
    }

    /** Applies the SYNC script's answer: triples of field, remaining milliseconds, instance id. */
    private void apply(List<Object> reply) {
        for (int i = 0; i + 2 < reply.size(); i += 3) {
            final String field = String.valueOf(reply.get(i));
            final int colon = field.indexOf(':');
            final Kind kind = colon < 0 ? null : Kind.ofField(field.substring(0, colon));
            if (kind == null) {
                LOG.warn("revocations: ignored a field of {} that is neither sub: nor jti:", KEY);
                continue;
            }
            final long remaining;
            try {
                remaining = Long.parseLong(String.valueOf(reply.get(i + 1)));
            } catch (NumberFormatException e) {
                continue;
            }
            arrived(kind, field.substring(colon + 1), remaining, String.valueOf(reply.get(i + 2)));
        }
    }

    /** Another instance's {@code revoke} announcement. */
    private void announced(Map<String, String> message) {
        final Kind kind = Kind.ofField(String.valueOf(message.get("kind")));
        final String value = message.get("value");
        final String by = message.get("by");
        final long remaining;
        try {
            remaining = Long.parseLong(String.valueOf(message.get("ttlMs")));
        } catch (NumberFormatException e) {
            LOG.warn("revocations: ignored an announcement from {} without a ttlMs", message.get("from"));
            return;
        }
        if (kind == null || value == null || value.isEmpty() || by == null) {
            LOG.warn("revocations: ignored an incomplete announcement from {}", message.get("from"));
            return;
        }
        arrived(kind, value, Math.min(remaining, MAX_TTL.toMillis()), by);
    }

    /** A revocation from Redis: new ones close this instance's matching connections. */
    private void arrived(Kind kind, String value, long remainingMillis, String by) {
        if (remainingMillis > 0 && learn(kind, value, remainingMillis, by)) {
            final int closed = closer.close(
                    kind,
                    value,
                    "token revoked by operator on instance " + by + " (" + kind.field() + "=" + value + ")");
            LOG.info(
                    "revocation of {} {} from instance {} in force here; {} connection(s) closed",
                    kind.field(),
                    value,
                    by,
                    closed);
        }
    }

    /**
     * Puts a revocation in force for {@code remainingMillis}, or extends one; never shortens one.
     *
     * @return whether it was not in force here before (so its connections are still open)
     */
    private boolean learn(Kind kind, String value, long remainingMillis, String by) {
        final long now = System.nanoTime();
        final long deadline = now + TimeUnit.MILLISECONDS.toNanos(remainingMillis);
        final InForce fresh = new InForce(kind, value, Instant.now().plusMillis(remainingMillis), deadline, by);
        final boolean[] added = new boolean[1];
        map(kind).compute(value, (key, old) -> {
            if (old == null || now - old.deadlineNanos() >= 0) {
                added[0] = true;
                return fresh;
            }
            return deadline - old.deadlineNanos() > 0 ? fresh : old;
        });
        return added[0];
    }

    private Map<String, InForce> map(Kind kind) {
        return kind == Kind.SUB ? subjects : tokenIds;
    }

    /** The entry for {@code value} if still in force; an expired one is dropped on the way. */
    private static InForce inForce(Map<String, InForce> map, String value) {
        final InForce entry = map.get(value);
        if (entry == null) {
            return null;
        }
        if (System.nanoTime() - entry.deadlineNanos() >= 0) {
            map.remove(value, entry);
            return null;
        }
        return entry;
    }

    /** This instance's id, as a revocation's {@code by}. */
    public String instanceId() {
        return instanceId;
    }
}
