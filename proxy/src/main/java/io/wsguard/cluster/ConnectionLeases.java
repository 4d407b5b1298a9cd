package io.wsguard.cluster;

import io.lettuce.core.ScriptOutputType;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connection caps shared by every instance on one Redis ({@code limits.connections.perIp},
 * {@code perSubject} and {@code proxy.clusterMaxConnections} with {@code rateLimitStore.type: redis}).
 *
 * <p>Each cap is a sorted set ({@link #perIpKey}, {@link #perSubjectKey}, {@link #MAX_KEY}) whose
 * members are {@code <instanceId>|<connection id>}, scored with the time they expire: Redis's clock
 * plus {@code leaseTtl}. A handshake takes every cap it is under with one script ({@link #acquire}),
 * all or none: expired members go, each set's size is compared with its cap, and only when all have
 * room is the member added to each. The script is atomic, so concurrent handshakes on any number of
 * instances never overshoot a cap. The connection's close gives them back with one more script. Two
 * Redis commands per connection, none per message.
 *
 * <p>The heartbeat ({@link RedisStore#everyHeartbeat}) scores every lease this instance holds again,
 * in scripts of up to {@link #RENEW_BATCH} members each; it adds the members it renews (no
 * {@code XX}), so that a Redis that restarted empty, or that was unreachable while this instance
 * admitted connections on its own ({@code onUnavailable}), holds them all again within one
 * heartbeat. A crashed instance renews nothing: its members expire within {@code leaseTtl} and the
 * next handshake on that key drops them.
 *
 * <p>A renewal must never bring back a lease its connection gave back. Each lease has a state under
 * its own lock; the heartbeat marks the leases it renews, sends the script, and only then lets them
 * go; a release that comes meanwhile is left to the heartbeat, which sends it after the renewal.
 * Commands on one Lettuce connection reach Redis in the order they were sent, so the removal always
 * runs after the renewal, never before.
 *
 * <p>Thread-safe. One per running proxy, on its {@link RedisStore}; {@link #close()} before the store.
 */
public final class ConnectionLeases implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ConnectionLeases.class);

    /** The feature name the store counts this feature's fallbacks under. */
    public static final String FEATURE = "connection_limit";
    /** The cluster-wide cap ({@code proxy.clusterMaxConnections}). */
    public static final String MAX_KEY = "wsguard:{leases}:max";
    /** Members per renewal script: keeps each script short (Redis runs nothing else meanwhile). */
    static final int RENEW_BATCH = 500;

    /**
     * KEYS: the caps' sets; ARGV[1]: the member; ARGV[2]: leaseTtl in ms; ARGV[2 + i]: the cap of
     * KEYS[i]. Returns 0 when the member now is in every set, or the index of the first full one
     * (then it was added to none). A member already in a set (a retried handshake) takes no second slot.
     */
    static final String ACQUIRE = """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local ttl = tonumber(ARGV[2])
            for i, key in ipairs(KEYS) do
              redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
              if not redis.call('ZSCORE', key, ARGV[1]) and redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
                return i
              end
            end
            for _, key in ipairs(KEYS) do
              redis.call('ZADD', key, now + ttl, ARGV[1])
              redis.call('PEXPIRE', key, ttl)
            end
            return 0
            """;

    /** KEYS: sets; ARGV[1]: leaseTtl in ms; ARGV[1 + i]: the member to (re)add to KEYS[i]. */
    static final String RENEW = """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local ttl = tonumber(ARGV[1])
            for i, key in ipairs(KEYS) do
              redis.call('ZADD', key, now + ttl, ARGV[1 + i])
              redis.call('PEXPIRE', key, ttl)
            end
            return #KEYS
            """;

    /** KEYS: the sets of one lease; ARGV[1]: its member. */
    static final String RELEASE = """
            for _, key in ipairs(KEYS) do
              redis.call('ZREM', key, ARGV[1])
            end
            return 0
            """;

    /** One cap a handshake is under: the sorted set that counts it, and its maximum. */
    public record Cap(String key, int max) {}

    /**
     * What {@link #acquire} answers: the lease taken, or the cap that was full ({@code lease} null);
     * a failed stage when Redis could not decide.
     */
    public record Outcome(Lease lease, Cap full) {}

    private final RedisStore store;
    private final String ttlMillis;
    private final Set<Lease> held = ConcurrentHashMap.newKeySet();
    /** Removals sent and not answered yet, by a sequence number: what a graceful stop waits for. */
    private final Map<Long, CompletableFuture<?>> releasing = new ConcurrentHashMap<>();

    private final AtomicLong releases = new AtomicLong();

    public ConnectionLeases(RedisStore store) {
        this.store = store;
        this.ttlMillis = Long.toString(store.leaseTtl().toMillis());
        store.everyHeartbeat(this::renewAll);
        // A reconnect (perhaps to a Redis that restarted empty): rebuild at once, not a heartbeat later.
        store.onConnected(this::renewAll);
    }

    /** The set counting {@code limits.connections.perIp} for one client on one route. */
    public static String perIpKey(String route, String clientKey) {
        return "wsguard:{leases}:" + route + ":ip:" + clientKey;
    }

    /** The set counting {@code limits.connections.perSubject} for one subject on one route. */
    public static String perSubjectKey(String route, String subject) {
        return "wsguard:{leases}:" + route + ":sub:" + subject;
    }

    /** The store underneath: {@code onUnavailable}, fallbacks. */
    public RedisStore store() {
        return store;
    }

    /**
     * Takes a slot under every cap in {@code caps} for connection {@code connectionId}, all or none,
     * with one script. The stage fails (quickly) when Redis cannot decide; the failure is counted
     * under {@link #FEATURE}, and the caller decides as {@code onUnavailable} says (and then
     * {@link #hold}s what it admitted, so that Redis learns of it when it is back).
     */
    public CompletionStage<Outcome> acquire(List<Cap> caps, String connectionId) {
        final String member = member(connectionId);
        final String[] keys = new String[caps.size()];
        final String[] args = new String[caps.size() + 2];
        args[0] = member;
        args[1] = ttlMillis;
        for (int i = 0; i < keys.length; i++) {
            keys[i] = caps.get(i).key();
            args[i + 2] = Integer.toString(caps.get(i).max());
        }
        return store.<Long>call(FEATURE, redis -> redis.eval(ACQUIRE, ScriptOutputType.INTEGER, keys, args))
                .thenApply(full -> {
                    if (full != 0) {
                        return new Outcome(null, caps.get(full.intValue() - 1));
                    }
                    return new Outcome(register(keys, member), null);
                });
    }

    /**
     * A lease on {@code caps} that Redis has not granted: a connection admitted while Redis could
     * not decide. Sends nothing now; the next heartbeat (or reconnect) adds it, so that the shared
     * counts include it once Redis answers.
     */
    public Lease hold(List<Cap> caps, String connectionId) {
        final String[] keys = caps.stream().map(Cap::key).toArray(String[]::new);
        return register(keys, member(connectionId));
    }

    /** How many leases this instance holds (tests, metrics). */
    public int held() {
        return held.size();
    }

    private Lease register(String[] keys, String member) {
        final Lease lease = new Lease(keys, member);
        held.add(lease);
        return lease;
    }

    private String member(String connectionId) {
        return store.instanceId() + "|" + connectionId;
    }

    /** Scores every lease held again, a batch per script; runs on the store's thread, never waits. */
    private void renewAll() {
        final List<Lease> batch = new ArrayList<>();
        int members = 0;
        for (Lease lease : held) {
            if (lease.startRenewal()) {
                batch.add(lease);
                members += lease.keys.length;
                if (members >= RENEW_BATCH) {
                    renew(batch, members);
                    batch.clear();
                    members = 0;
                }
            }
        }
        if (!batch.isEmpty()) {
            renew(batch, members);
        }
    }

    private void renew(List<Lease> batch, int members) {
        final String[] keys = new String[members];
        final String[] args = new String[members + 1];
        args[0] = ttlMillis;
        int i = 0;
        for (Lease lease : batch) {
            for (String key : lease.keys) {
                keys[i] = key;
                args[i + 1] = lease.member;
                i++;
            }
        }
        try {
            // Not a decision: a failure (Redis down) is not counted as a fallback; the next heartbeat tries again.
            store.<Long>call(null, redis -> redis.eval(RENEW, ScriptOutputType.INTEGER, keys, args));
        } finally {
            // The script has been sent (or not at all): a removal sent from here on runs after it.
            for (Lease lease : batch) {
                if (lease.endRenewal()) {
                    sendRelease(lease);
                }
            }
        }
    }

    private void sendRelease(Lease lease) {
        final CompletableFuture<Long> sent = store.<Long>call(
                        null, redis -> redis.eval(RELEASE, ScriptOutputType.INTEGER, lease.keys, lease.member))
                .toCompletableFuture();
        final Long id = releases.incrementAndGet();
        releasing.put(id, sent);
        // Only bookkeeping for close(): the store already counted and logged a failure.
        final var unused = sent.whenComplete((ignored, failure) -> releasing.remove(id));
    }

    /**
     * Gives back every lease still held and waits, at most the store's timeout, for the removals sent
     * to be answered: a graceful stop leaves no slot behind. Before the store closes.
     */
    @Override
    public void close() {
        for (Lease lease : List.copyOf(held)) {
            lease.release();
        }
        final CompletableFuture<?>[] pending = releasing.values().toArray(new CompletableFuture<?>[0]);
        try {
            CompletableFuture.allOf(pending).get(store.timeout().toMillis() + 100, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            // Not answered: those members expire within leaseTtl.
            LOG.debug("connection leases: {} removal(s) unanswered at stop: {}", pending.length, e.toString());
        }
    }

    /** One connection's slots: given back once, never renewed after that. */
    public final class Lease {
        private static final int HELD = 0;
        private static final int RENEWING = 1;
        /** Released while a renewal was being sent: the heartbeat sends the removal after it. */
        private static final int RELEASE_DUE = 2;

        private static final int RELEASED = 3;

        private final String[] keys;
        private final String member;
        private int state = HELD;

        private Lease(String[] keys, String member) {
            this.keys = keys;
            this.member = member;
        }

        /** Gives the slots back (one script); later calls do nothing. */
        public void release() {
            synchronized (this) {
                if (state == RENEWING) {
                    state = RELEASE_DUE;
                    held.remove(this);
                    return;
                }
                if (state != HELD) {
                    return;
                }
                state = RELEASED;
            }
            held.remove(this);
            // No renewal can be sent for it from here on: it is RELEASED.
            sendRelease(this);
        }

        private synchronized boolean startRenewal() {
            if (state != HELD) {
                return false;
            }
            state = RENEWING;
            return true;
        }

        /** True when a release came during the renewal: the caller sends it now. */
        private synchronized boolean endRenewal() {
            if (state == RELEASE_DUE) {
                state = RELEASED;
                return true;
            }
            state = HELD;
            return false;
        }
    }
}
