package io.wsguard.cluster;

import io.lettuce.core.ScriptOutputType;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The instance registry behind {@code GET /admin/cluster}: at every heartbeat of the
 * {@link RedisStore}, and after every (re)connect, this instance writes what it is (listener and
 * admin addresses as bound, open connections, routes hash, blocked traffic by reason) and reads
 * every live instance's record back, in one script.
 *
 * <p>In Redis: the hash {@code wsguard:{members}:records} (instance id to its record as JSON) and
 * the sorted set {@code wsguard:{members}:expiries} (instance id to when its record lapses, in
 * Redis's milliseconds: Redis's clock, never an instance's, decides what is live). One hash tag, so
 * a Redis Cluster keeps both in one slot. A stopped instance removes its record; a killed one lapses
 * {@code leaseTtl} after its last heartbeat, and the next script run by anyone drops it. The record
 * carries its own {@code leaseTtl}, so its heartbeat time is its expiry minus that.
 *
 * <p>{@code wsguard_cluster_instances} and {@code wsguard_cluster_routes_mismatch} come from the last
 * heartbeat's read: a scrape never waits on Redis. Without Redis they say 1 and 0; during an outage
 * they keep the last read's values (the store's own metrics say that it is down).
 *
 * <p>Thread-safe. Without a store ({@code rateLimitStore.type: local}) the view is this instance.
 */
public final class Members implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Members.class);

    static final String RECORDS = "wsguard:{members}:records";
    static final String EXPIRIES = "wsguard:{members}:expiries";
    private static final String[] KEYS = {RECORDS, EXPIRIES};

    /**
     * Writes this instance's record (unless ARGV[2] is empty), drops lapsed ones, and returns Redis's
     * now followed by (id, expiry, record) for each live instance. The keys themselves expire after
     * twice the longest lease written to them, so that a cluster that is gone leaves nothing behind.
     */
    private static final String BEAT = """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local ttl = tonumber(ARGV[3])
            if ARGV[2] ~= '' then
              redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
              redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
              for _, key in ipairs(KEYS) do
                if redis.call('PTTL', key) < 2 * ttl then redis.call('PEXPIRE', key, 2 * ttl) end
              end
            end
            local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
            for _, id in ipairs(lapsed) do
              redis.call('HDEL', KEYS[1], id)
              redis.call('ZREM', KEYS[2], id)
            end
            local live = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
            local out = { tostring(now) }
            for i = 1, #live, 2 do
              local record = redis.call('HGET', KEYS[1], live[i])
              if record then
                out[#out + 1] = live[i]
                out[#out + 1] = live[i + 1]
                out[#out + 1] = record
              end
            end
            return out
            """;

    private static final String LEAVE = """
            redis.call('HDEL', KEYS[1], ARGV[1])
            redis.call('ZREM', KEYS[2], ARGV[1])
            return 1
            """;

    private static final JsonMapper JSON = JsonMapper.builder()
            // A newer wsguard may add fields: an older one still lists that instance.
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    /** What this instance says about itself; built at each heartbeat, on the store's thread. */
    public record Local(
            List<String> listeners, String admin, long connections, String routesHash, Map<String, Long> blocked) {}

    /**
     * One live instance.
     *
     * @param heartbeatAt Redis's clock ({@code TIME}) at its last heartbeat; without Redis, this
     *     instance's clock when asked
     */
    public record Member(
            String id,
            boolean self,
            List<String> listeners,
            String admin,
            long connections,
            Instant heartbeatAt,
            String routesHash,
            Map<String, Long> blocked) {}

    /**
     * {@code GET /admin/cluster}.
     *
     * @param store where the shared store is (the word none without one); never a password
     * @param storeStatus {@code available}, or why not
     * @param connections summed over {@code instances}
     * @param blocked summed over {@code instances}, by reason
     * @param warnings one per instance whose routes hash differs from this one's
     * @param note set when the list can only be this instance: no shared store, or it is down
     */
    public record View(
            String self,
            String store,
            String storeStatus,
            List<Member> instances,
            long connections,
            Map<String, Long> blocked,
            List<String> warnings,
            String note) {}

    /** What Redis holds per instance. */
    record Stored(
            String id,
            List<String> listeners,
            String admin,
            long connections,
            String routesHash,
            Map<String, Long> blocked,
            long leaseTtlMs) {}

    private final RedisStore store;
    private final String id;
    private final Supplier<Local> local;
    private final AtomicLong instances = new AtomicLong(1);
    private final AtomicLong mismatch = new AtomicLong();
    private boolean closed; // guarded by this

    /**
     * @param store the shared store, or null ({@code rateLimitStore.type: local})
     * @param id this instance's id ({@link RedisStore#instanceId()} with a store)
     * @param local this instance's record, asked for at each heartbeat; must not block
     * @param registry where the two gauges go
     */
    public Members(RedisStore store, String id, Supplier<Local> local, MeterRegistry registry) {
        this.store = store;
        this.id = id;
        this.local = local;
        Gauge.builder("wsguard.cluster.instances", instances, AtomicLong::get)
                .description("Live wsguard instances sharing this Redis, at the last heartbeat (1 without Redis)")
                .register(registry);
        Gauge.builder("wsguard.cluster.routes.mismatch", mismatch, AtomicLong::get)
                .description("1 when a live instance's routes hash differs from this instance's, at the last heartbeat")
                .register(registry);
    }

    /** The id of an instance without a shared store: only ever shown, as the one instance there is. */
    public static String standaloneId() {
        final String host = System.getenv().getOrDefault("HOSTNAME", "wsguard");
        return host.replaceAll("[^A-Za-z0-9_.-]", "_") + "-"
                + ProcessHandle.current().pid();
    }

    /** Starts writing this instance's record: now if connected, and at every heartbeat and reconnect. */
    public void start() {
        if (store != null) {
            store.everyHeartbeat(this::beat);
            store.onConnected(this::beat);
        }
    }

    /**
     * Writes this instance's record now and reads the others back, without waiting: after a reload,
     * so that a changed routes hash shows before the next heartbeat.
     */
    public void beat() {
        final CompletionStage<View> read;
        synchronized (this) {
            if (closed || store == null) {
                return;
            }
            read = writeAndRead();
        }
        read.whenComplete((view, failure) -> {
            if (failure == null) {
                instances.set(view.instances().size());
                mismatch.set(view.warnings().isEmpty() ? 0 : 1);
            }
        });
    }

    /**
     * The cluster as Redis has it now (this instance's record written first, so it is fresh). The
     * stage completes on Redis's thread, within the store's timeout; it never fails: without Redis
     * it is this instance, with a note saying why.
     */
    public CompletionStage<View> view() {
        if (store == null) {
            return CompletableFuture.completedStage(
                    alone("none", "none", "no shared store (rateLimitStore.type: local): this instance only"));
        }
        final CompletionStage<View> read;
        synchronized (this) {
            read = closed ? CompletableFuture.failedStage(new IllegalStateException("stopped")) : writeAndRead();
        }
        return read.handle((view, failure) -> failure == null
                ? view
                : alone(
                        store.where(),
                        "unavailable: " + store.lastFailure(),
                        "the shared store cannot be reached: this instance only"));
    }

    /** Caller holds the lock, so that a record is never written after {@link #close()} removed it. */
    private CompletionStage<View> writeAndRead() {
        final Local self = local.get();
        final long leaseMs = store.leaseTtl().toMillis();
        final String record = JSON.writeValueAsString(new Stored(
                id, self.listeners(), self.admin(), self.connections(), self.routesHash(), self.blocked(), leaseMs));
        return store.<List<Object>>call(
                        null,
                        redis -> redis.eval(BEAT, ScriptOutputType.MULTI, KEYS, id, record, Long.toString(leaseMs)))
                .thenApply(reply -> view(reply, self));
    }

    private View view(List<Object> reply, Local self) {
        final List<Member> members = new ArrayList<>();
        for (int i = 1; i + 2 < reply.size(); i += 3) {
            final String memberId = String.valueOf(reply.get(i));
            final long expiry = (long) Double.parseDouble(String.valueOf(reply.get(i + 1)));
            final Stored stored;
            try {
                stored = JSON.readValue(String.valueOf(reply.get(i + 2)), Stored.class);
            } catch (JacksonException e) {
                LOG.debug("cluster view: unreadable record of {}: {}", memberId, e.getOriginalMessage());
                continue;
            }
            members.add(new Member(
                    memberId,
                    memberId.equals(id),
                    stored.listeners() == null ? List.of() : stored.listeners(),
                    stored.admin(),
                    stored.connections(),
                    Instant.ofEpochMilli(expiry - stored.leaseTtlMs()),
                    stored.routesHash(),
                    stored.blocked() == null ? Map.of() : stored.blocked()));
        }
        // This instance first, then the others by id: a stable order for people and the dashboard.
        members.sort(Comparator.comparing((Member m) -> !m.self()).thenComparing(Member::id));
        return summed(store.where(), "available", members, self.routesHash(), null);
    }

    private View alone(String where, String status, String note) {
        final Local self = local.get();
        final Member member = new Member(
                id,
                true,
                self.listeners(),
                self.admin(),
                self.connections(),
                Instant.now(),
                self.routesHash(),
                self.blocked());
        return summed(where, status, List.of(member), self.routesHash(), note);
    }

    private View summed(String where, String status, List<Member> members, String ownHash, String note) {
        long connections = 0;
        final Map<String, Long> blocked = new TreeMap<>();
        final List<String> warnings = new ArrayList<>();
        for (Member member : members) {
            connections += member.connections();
            member.blocked().forEach((reason, count) -> blocked.merge(reason, count, Long::sum));
            if (!member.self() && !ownHash.equals(member.routesHash())) {
                warnings.add("instances " + id + " and " + member.id() + " run different routes (routes hash "
                        + abbreviated(ownHash) + " and " + abbreviated(member.routesHash()) + ")");
            }
        }
        return new View(id, where, status, List.copyOf(members), connections, blocked, warnings, note);
    }

    private static String abbreviated(String hash) {
        return hash == null ? "none" : hash.substring(0, Math.min(12, hash.length()));
    }

    /**
     * Stops the heartbeat's writes and removes this instance's record, waiting at most the store's
     * timeout for Redis: on the stopping thread, never a Jetty one. A record Redis did not take
     * lapses after {@code leaseTtl}.
     */
    @Override
    public void close() {
        final CompletionStage<Object> left;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (store == null) {
                return;
            }
            left = store.call(null, redis -> redis.eval(LEAVE, ScriptOutputType.INTEGER, KEYS, id));
        }
        try {
            left.toCompletableFuture().get(store.timeout().toMillis() + 100, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            LOG.debug("cluster view: record not removed ({}); it lapses after {}", e.toString(), store.leaseTtl());
        }
    }
}
