package io.wsguard.cluster;

import io.github.bucket4j.distributed.ExpirationAfterWriteStrategy;
import io.github.bucket4j.distributed.proxy.AsyncProxyManager;
import io.github.bucket4j.redis.lettuce.Bucket4jLettuce;
import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisChannelHandler;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisConnectionStateListener;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.SslOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.wsguard.policy.RateLimitStorePolicy.OnUnavailable;
import io.wsguard.policy.RateLimitStorePolicy.RedisPolicy;
import java.net.SocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one Redis that every wsguard instance of a cluster shares ({@code rateLimitStore.type: redis}):
 * its Lettuce client (standalone, Sentinel, or Redis Cluster; TLS with an own CA; a password from the
 * policy), the connections every shared feature uses, one breaker they all obey, and the heartbeat
 * that renews what this instance holds.
 *
 * <p>Everything goes through Lettuce's async API: no caller ever waits for Redis. Redis may be down:
 * wsguard starts anyway and connects in the background, retrying every {@link #CONNECT_RETRY}. A call
 * fails fast while disconnected (Lettuce rejects commands), and times out after {@code timeout}; the
 * feature then decides as {@code onUnavailable} says. After a failure the breaker skips Redis for
 * {@code breakerWindow}, so that a dead or hung Redis does not cost a timeout per handshake; then one
 * call probes it, and shared decisions resume when it answers. Each fallback counts in
 * {@code wsguard_ratelimit_store_fallbacks_total{feature,onUnavailable}}; a warning is logged at most
 * once a minute; the outage and the recovery are each reported once to the {@link StatusListener}s
 * (the audit log).
 *
 * <p>Keys: every key wsguard writes starts with {@code wsguard:}. Keys that one script touches
 * together carry the same hash tag, so that a Redis Cluster keeps them in one slot.
 *
 * <p>Thread-safe. One per running proxy; {@link #close()} at stop.
 */
public final class RedisStore implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RedisStore.class);
    /** How long Redis is skipped after a failed call. */
    public static final Duration BREAKER_WINDOW = Duration.ofSeconds(2);
    /** How often a first connection is retried while Redis cannot be reached at start. */
    static final Duration CONNECT_RETRY = Duration.ofSeconds(1);

    private static final long WARN_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);

    /** What an outage and its end are reported to. Called on Redis's or the heartbeat's thread. */
    public interface StatusListener {
        /** Redis stopped answering ({@code cause} never holds the URI: it may carry a password). */
        void unavailable(String where, String cause);

        /** Redis answers again. */
        void available(String where);
    }

    private final RedisPolicy policy;
    private final String instanceId;
    private final String where;
    private final long breakerNanos;
    private final Duration timeout;
    private final ClientResources resources;
    private final AbstractRedisClient client;
    private final List<RedisURI> uris;
    private final ScheduledExecutorService scheduler;
    private final MeterRegistry registry;
    private final Map<String, Counter> fallbacks = new ConcurrentHashMap<>();
    private final List<Runnable> heartbeatTasks = new CopyOnWriteArrayList<>();
    private final List<Runnable> connectedTasks = new CopyOnWriteArrayList<>();
    private final List<StatusListener> statusListeners = new CopyOnWriteArrayList<>();
    private final Map<String, List<Consumer<String>>> subscriptions = new ConcurrentHashMap<>();

    private volatile StatefulConnection<String, String> commandConnection;
    private volatile RedisClusterAsyncCommands<String, String> commands;
    private volatile StatefulConnection<String, byte[]> bucketConnection;
    private volatile AsyncProxyManager<String> buckets;
    private volatile StatefulRedisPubSubConnection<String, String> pubSub;

    /** 0 while the breaker is closed; otherwise the nanoTime until which Redis is skipped. */
    private final AtomicLong openUntil = new AtomicLong();
    /** Whether the last call or connection attempt failed: the outage is reported once, at its start. */
    private final AtomicBoolean down = new AtomicBoolean();

    private volatile String lastFailure = "not connected yet";
    private final AtomicLong nextWarning = new AtomicLong(System.nanoTime());
    private final AtomicBoolean closed = new AtomicBoolean();

    private RedisStore(RedisPolicy policy, MeterRegistry registry, Duration breakerWindow) {
        this.policy = policy;
        this.registry = registry;
        this.timeout = policy.timeout();
        this.breakerNanos = breakerWindow.toNanos();
        this.instanceId = newInstanceId();
        this.uris = RedisUris.parse(policy);
        // Never the URI itself: it may hold a password.
        this.where = RedisUris.describe(uris, policy);
        this.resources = ClientResources.builder()
                .ioThreadPoolSize(2)
                .computationThreadPoolSize(2)
                .reconnectDelay(Delay.constant(CONNECT_RETRY))
                .build();
        final SocketOptions socket =
                SocketOptions.builder().connectTimeout(Duration.ofSeconds(1)).build();
        final SslOptions ssl = policy.caFile()
                .map(ca -> SslOptions.builder()
                        .jdkSslProvider()
                        .trustManager(ca.toFile())
                        .build())
                .orElse(SslOptions.create());
        // Lettuce's defaults queue commands while disconnected and time out after 60 s: every
        // handshake would hang through an outage. Reject at once instead, and time out quickly.
        if (policy.cluster()) {
            final RedisClusterClient cluster = RedisClusterClient.create(resources, uris);
            cluster.setOptions(ClusterClientOptions.builder()
                    .autoReconnect(true)
                    .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                    .timeoutOptions(TimeoutOptions.enabled(timeout))
                    .socketOptions(socket)
                    .sslOptions(ssl)
                    // A failover moves slots: Lettuce follows MOVED/ASK by itself; refresh the slot map now and then
                    // too.
                    .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                            .enablePeriodicRefresh(Duration.ofSeconds(30))
                            .build())
                    .build());
            this.client = cluster;
        } else {
            final RedisClient single = RedisClient.create(resources);
            single.setOptions(ClientOptions.builder()
                    .autoReconnect(true)
                    .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                    .timeoutOptions(TimeoutOptions.enabled(timeout))
                    .socketOptions(socket)
                    .sslOptions(ssl)
                    .build());
            this.client = single;
        }
        client.addListener(new RedisConnectionStateListener() {
            @Override
            public void onRedisConnected(RedisChannelHandler<?, ?> connection, SocketAddress socketAddress) {
                // A reconnect after an outage: what Redis lost (a restart without persistence) or
                // what expired meanwhile is written again by the features, from what this instance holds.
                if (commands != null && connection == commandConnection) {
                    scheduler.execute(RedisStore.this::reconnected);
                }
            }

            @Override
            public void onRedisDisconnected(RedisChannelHandler<?, ?> connection) {
                // Known at once, not at the next call: the audit line and /readyz say so now.
                if (commands != null && !closed.get()) {
                    failed(new java.io.IOException("connection to Redis lost"));
                }
            }
        });
        this.scheduler = Executors.newSingleThreadScheduledExecutor(runnable -> {
            final Thread thread = new Thread(runnable, "wsguard-redis");
            thread.setDaemon(true);
            return thread;
        });
    }

    /**
     * Starts connecting in the background; usable at once (calls fail over until connected). The
     * heartbeat runs every third of {@code leaseTtl} from now on.
     *
     * @param registry where the fallback counters go, or null
     */
    public static RedisStore connect(RedisPolicy policy, MeterRegistry registry) {
        return connect(policy, registry, BREAKER_WINDOW);
    }

    /** As above with the breaker window chosen (tests). */
    public static RedisStore connect(RedisPolicy policy, MeterRegistry registry, Duration breakerWindow) {
        final RedisStore store = new RedisStore(policy, registry, breakerWindow);
        store.scheduler.execute(store::tryConnect);
        final long every = store.heartbeatInterval().toMillis();
        // Runs until close() shuts the scheduler down; heartbeat() catches its tasks' failures itself.
        final var unused =
                store.scheduler.scheduleWithFixedDelay(store::heartbeat, every, every, TimeUnit.MILLISECONDS);
        return store;
    }

    /** This process's id in the cluster: unique per start, so that a restarted instance is a new one. */
    public String instanceId() {
        return instanceId;
    }

    /** What a shared feature does while Redis cannot answer. */
    public OnUnavailable onUnavailable() {
        return policy.onUnavailable();
    }

    /** How long what this instance holds outlives its last heartbeat. */
    public Duration leaseTtl() {
        return policy.leaseTtl();
    }

    /** How often the heartbeat runs: a third of {@link #leaseTtl()}. */
    public Duration heartbeatInterval() {
        return policy.leaseTtl().dividedBy(3);
    }

    /** The most one call may take. */
    public Duration timeout() {
        return timeout;
    }

    /** Where Redis is, for logs and {@code /readyz}: hosts and ports, never a password. */
    public String where() {
        return where;
    }

    /** Whether the connections have been made (they may be reconnecting now). */
    public boolean connected() {
        return commands != null;
    }

    /** Whether calls go to Redis now: connected, and neither failing nor skipped by the breaker. */
    public boolean available() {
        return commands != null && !down.get();
    }

    /** Why Redis is unavailable, when {@link #available()} is false; never the URI. */
    public String lastFailure() {
        return lastFailure;
    }

    /**
     * Runs {@code task} on the store's own thread at every heartbeat ({@link #heartbeatInterval()}),
     * whether Redis is up or not; the task issues async calls and must not block.
     */
    public void everyHeartbeat(Runnable task) {
        heartbeatTasks.add(task);
    }

    /**
     * Runs {@code task} on the store's thread each time the connection is made, the first time
     * included: where a feature writes again what Redis may have lost.
     */
    public void onConnected(Runnable task) {
        connectedTasks.add(task);
        if (commands != null) {
            scheduler.execute(task);
        }
    }

    /** Reports the outages and recoveries from now on. */
    public void addStatusListener(StatusListener listener) {
        statusListeners.add(listener);
    }

    /**
     * One Redis call on the command connection ({@code String} keys and values). The stage fails
     * quickly when Redis cannot decide: not connected, breaker open, error or timeout; the failure
     * is already counted (under {@code feature}, unless null: a heartbeat is no decision) and
     * logged, and the caller applies {@link #onUnavailable()}.
     */
    public <T> CompletionStage<T> call(
            String feature, Function<RedisClusterAsyncCommands<String, String>, CompletionStage<T>> command) {
        final RedisClusterAsyncCommands<String, String> async = commands;
        if (async == null) {
            return unavailable(feature, new IllegalStateException("not connected"), false);
        }
        return guarded(feature, () -> command.apply(async).toCompletableFuture());
    }

    /**
     * One call on Bucket4j's proxy manager over Redis: as {@link #call}, with the bucket codec.
     */
    public <T> CompletionStage<T> callBuckets(
            String feature, Function<AsyncProxyManager<String>, CompletableFuture<T>> command) {
        final AsyncProxyManager<String> manager = buckets;
        if (manager == null) {
            return unavailable(feature, new IllegalStateException("not connected"), false);
        }
        return guarded(feature, () -> command.apply(manager));
    }

    private <T> CompletionStage<T> guarded(String feature, java.util.function.Supplier<CompletableFuture<T>> call) {
        final long until = openUntil.get();
        if (until != 0) {
            final long now = System.nanoTime();
            // Past the window, exactly one caller (the one that moves the window on) probes Redis.
            if (now - until < 0 || !openUntil.compareAndSet(until, now + breakerNanos)) {
                return unavailable(feature, new IllegalStateException("breaker open"), false);
            }
        }
        final CompletableFuture<T> future;
        try {
            future = call.get().orTimeout(timeout.toMillis() + 50, TimeUnit.MILLISECONDS);
        } catch (RuntimeException e) {
            return unavailable(feature, e, true);
        }
        return future.handle((value, failure) -> {
                    if (failure == null) {
                        answered();
                        return CompletableFuture.completedStage(value);
                    }
                    return RedisStore.<T>unavailable(this, feature, failure);
                })
                .thenCompose(stage -> stage);
    }

    private static <T> CompletionStage<T> unavailable(RedisStore store, String feature, Throwable failure) {
        return store.unavailable(feature, failure, true);
    }

    /**
     * Subscribes {@code listener} to {@code channel} (pub/sub on the same Redis); messages arrive on
     * Lettuce's threads. Subscriptions are made again after a reconnect by Lettuce itself.
     */
    public void subscribe(String channel, Consumer<String> listener) {
        subscriptions
                .computeIfAbsent(channel, c -> new CopyOnWriteArrayList<>())
                .add(listener);
        // Read after the listener is in the map: either the connection is already published here and
        // this subscribes, or it is not yet and the connect subscribes every channel in the map after
        // publishing it. A channel subscribed twice is harmless (SUBSCRIBE is idempotent).
        final StatefulRedisPubSubConnection<String, String> connection = pubSub;
        if (connection != null) {
            final var unused = connection.async().subscribe(channel);
        }
    }

    /**
     * Publishes {@code message} on {@code channel}; the stage gives how many subscribers got it on
     * the node that took it: in a Redis Cluster the message reaches every node's subscribers, but
     * the count is that one node's, so it says nothing about the other instances there.
     */
    public CompletionStage<Long> publish(String feature, String channel, String message) {
        return call(feature, redis -> redis.publish(channel, message));
    }

    private void tryConnect() {
        if (closed.get()) {
            return;
        }
        // Both outcomes are handled in the callback: a failure schedules the next attempt.
        final var unused = connectAll().whenComplete((ignored, failure) -> {
            if (failure != null) {
                failed(failure);
                warn(
                        "shared store: cannot connect to Redis at {} ({}); retrying every " + CONNECT_RETRY.toSeconds()
                                + " s",
                        failure);
                if (!closed.get()) {
                    // Cancelled with the scheduler at close; tryConnect reports its own failures.
                    final var unusedRetry =
                            scheduler.schedule(this::tryConnect, CONNECT_RETRY.toMillis(), TimeUnit.MILLISECONDS);
                }
                return;
            }
            if (closed.get()) {
                closeConnections();
                return;
            }
            answered();
            LOG.info("shared store: connected to Redis at {} as instance {}", where, instanceId);
            scheduler.execute(this::reconnected);
        });
    }

    /** Opens the command, bucket and pub/sub connections; all three, or none stays open. */
    private CompletableFuture<Void> connectAll() {
        final RedisCodec<String, byte[]> bucketCodec = RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE);
        final RedisPubSubAdapter<String, String> dispatch = new RedisPubSubAdapter<>() {
            @Override
            public void message(String channel, String message) {
                final List<Consumer<String>> listeners = subscriptions.get(channel);
                if (listeners != null) {
                    for (Consumer<String> listener : listeners) {
                        try {
                            listener.accept(message);
                        } catch (RuntimeException e) {
                            LOG.warn("shared store: a listener of {} failed: {}", channel, e.toString());
                        }
                    }
                }
            }
        };
        final CompletableFuture<StatefulConnection<String, String>> command;
        final CompletableFuture<StatefulConnection<String, byte[]>> bucket;
        final CompletableFuture<StatefulRedisPubSubConnection<String, String>> sub;
        if (client instanceof RedisClusterClient cluster) {
            // connectAsync refuses to start before the slot map is known ("Partitions not
            // initialized"); only the blocking connect() loads it by itself. Load it first, without
            // blocking: the first time from the seed, on a retry again (the nodes may have moved).
            final CompletableFuture<Void> topology =
                    cluster.refreshPartitionsAsync().toCompletableFuture();
            command = topology.thenCompose(t -> cluster.connectAsync(StringCodec.UTF8))
                    .thenApply(c -> c);
            bucket =
                    topology.thenCompose(t -> cluster.connectAsync(bucketCodec)).thenApply(c -> c);
            sub = topology.thenCompose(t -> cluster.connectPubSubAsync(StringCodec.UTF8))
                    .thenApply(c -> c);
        } else {
            final RedisClient single = (RedisClient) client;
            final RedisURI uri = uris.get(0);
            command = single.connectAsync(StringCodec.UTF8, uri)
                    .toCompletableFuture()
                    .thenApply(c -> c);
            bucket = single.connectAsync(bucketCodec, uri).toCompletableFuture().thenApply(c -> c);
            sub = single.connectPubSubAsync(StringCodec.UTF8, uri)
                    .toCompletableFuture()
                    .thenApply(c -> c);
        }
        final CompletableFuture<Void> opened = CompletableFuture.allOf(command, bucket, sub);
        final CompletableFuture<Void> ready = client instanceof RedisClusterClient cluster
                ? opened.thenCompose(v -> connectNodes(cluster, List.of(command.join(), bucket.join())))
                : opened;
        return ready.handle((ignored, failure) -> {
            if (failure != null) {
                // Whichever opened goes again, so that a retry does not pile up connections.
                final var unusedCommand = command.thenAccept(RedisStore::closeQuietly);
                final var unusedBucket = bucket.thenAccept(RedisStore::closeQuietly);
                final var unusedSub = sub.thenAccept(RedisStore::closeQuietly);
                throw new java.util.concurrent.CompletionException(failure);
            }
            final StatefulRedisPubSubConnection<String, String> pubSubConnection = sub.join();
            pubSubConnection.addListener(dispatch);
            // Published first, then every channel known now subscribed: a subscribe() in between
            // sees the connection and subscribes its channel itself (see subscribe).
            pubSub = pubSubConnection;
            if (!subscriptions.isEmpty()) {
                final var unused = pubSubConnection
                        .async()
                        .subscribe(subscriptions.keySet().toArray(new String[0]));
            }
            final StatefulConnection<String, byte[]> bucketConnection = bucket.join();
            this.bucketConnection = bucketConnection;
            // Built on an open connection, so nothing here connects eagerly (which would throw while
            // Redis is down); Lettuce reconnects these connections by itself from now on.
            final var builder = bucketConnection instanceof StatefulRedisClusterConnection<String, byte[]> c
                    ? Bucket4jLettuce.casBasedBuilder(c)
                    : Bucket4jLettuce.casBasedBuilder((StatefulRedisConnection<String, byte[]>) bucketConnection);
            buckets = builder.requestTimeout(timeout)
                    .expirationAfterWrite(
                            ExpirationAfterWriteStrategy.basedOnTimeForRefillingBucketUpToMax(Duration.ofSeconds(10)))
                    .build()
                    .asAsync();
            final StatefulConnection<String, String> commandConnection = command.join();
            this.commandConnection = commandConnection;
            commands = commandConnection instanceof StatefulRedisClusterConnection<String, String> c
                    ? c.async()
                    : ((StatefulRedisConnection<String, String>) commandConnection).async();
            return null;
        });
    }

    /**
     * Opens each connection's link to every node that serves slots. Lettuce opens them lazily, at
     * the first command for a node's slot, and with REJECT_COMMANDS it rejects every command sent
     * while that link is still being made: each first call per node would fall back (and open the
     * breaker) though the cluster is fine. By host and port, as Lettuce keys the links it routes
     * slots to (a link opened by node id would be another one).
     */
    private static CompletableFuture<Void> connectNodes(
            RedisClusterClient cluster, List<StatefulConnection<String, ?>> connections) {
        final List<CompletableFuture<?>> links = new java.util.ArrayList<>();
        for (RedisClusterNode node : cluster.getPartitions()) {
            if (node.getSlots().isEmpty()) {
                continue;
            }
            for (StatefulConnection<String, ?> connection : connections) {
                if (connection instanceof StatefulRedisClusterConnection<String, ?> c) {
                    links.add(c.getConnectionAsync(
                            node.getUri().getHost(), node.getUri().getPort()));
                }
            }
        }
        return CompletableFuture.allOf(links.toArray(new CompletableFuture<?>[0]));
    }

    private void reconnected() {
        // The connection has just been made again: Redis answers, so the breaker a failure opened
        // must not keep the features' write-back (leases, revocations, records) waiting out its window.
        openUntil.set(0);
        for (Runnable task : connectedTasks) {
            runSafely(task);
        }
    }

    private void heartbeat() {
        // One PING a heartbeat, so that an outage and its end are seen (audited, on /readyz) within
        // a heartbeat even while no feature calls Redis.
        if (commands != null) {
            call(null, RedisClusterAsyncCommands::ping);
        }
        for (Runnable task : heartbeatTasks) {
            runSafely(task);
        }
    }

    private static void runSafely(Runnable task) {
        try {
            task.run();
        } catch (RuntimeException e) {
            LOG.warn("shared store: a heartbeat task failed: {}", e.toString());
        }
    }

    private void answered() {
        openUntil.set(0);
        if (down.compareAndSet(true, false)) {
            LOG.info("shared store: Redis at {} answers again", where);
            for (StatusListener listener : statusListeners) {
                listener.available(where);
            }
        }
    }

    private void failed(Throwable cause) {
        final String text = rootCause(cause);
        lastFailure = text;
        if (down.compareAndSet(false, true)) {
            for (StatusListener listener : statusListeners) {
                listener.unavailable(where, text);
            }
        }
    }

    private <T> CompletionStage<T> unavailable(String feature, Throwable cause, boolean failedCall) {
        if (failedCall) {
            openUntil.set(System.nanoTime() + breakerNanos);
            failed(cause);
        }
        if (feature != null) {
            fallback(feature).increment();
        }
        warn(
                "shared store: Redis at {} unavailable ({}); shared limits decided as onUnavailable: "
                        + policy.onUnavailable().name().toLowerCase(Locale.ROOT),
                cause);
        return CompletableFuture.failedStage(cause);
    }

    /** The counter of decisions {@code feature} made without Redis; one series per feature. */
    public Counter fallback(String feature) {
        return fallbacks.computeIfAbsent(feature, f -> Counter.builder("wsguard.ratelimit.store.fallbacks")
                .description("Decisions of a shared feature made without Redis (unreachable, timed out, breaker open)")
                .tag("feature", f)
                .tag("onUnavailable", policy.onUnavailable().name().toLowerCase(Locale.ROOT))
                .register(
                        registry == null ? new io.micrometer.core.instrument.simple.SimpleMeterRegistry() : registry));
    }

    private void warn(String format, Throwable cause) {
        final long due = nextWarning.get();
        final long now = System.nanoTime();
        if (now - due >= 0 && nextWarning.compareAndSet(due, now + WARN_EVERY_NANOS)) {
            LOG.warn(format, where, rootCause(cause));
        }
    }

    private static String rootCause(Throwable cause) {
        Throwable root = cause;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.getMessage() == null
                ? root.getClass().getSimpleName()
                : root.getClass().getSimpleName() + ": " + root.getMessage();
    }

    /** A new instance id: the host name and 32 random bits (also for an instance without Redis). */
    static String newInstanceId() {
        final byte[] random = new byte[4];
        new SecureRandom().nextBytes(random);
        final String host = System.getenv().getOrDefault("HOSTNAME", "wsguard");
        return host.replaceAll("[^A-Za-z0-9_.-]", "_") + "-" + HexFormat.of().formatHex(random);
    }

    /**
     * Closes {@code connection} without waiting: at stop, or a half-made set of connections. Nothing
     * is left to do if the close fails (the client's shutdown releases its sockets anyway).
     */
    private static void closeQuietly(StatefulConnection<?, ?> connection) {
        final var unused = connection.closeAsync();
    }

    private void closeConnections() {
        final StatefulRedisPubSubConnection<String, String> sub = pubSub;
        if (sub != null) {
            closeQuietly(sub);
        }
        final StatefulConnection<String, byte[]> bucket = bucketConnection;
        if (bucket != null) {
            closeQuietly(bucket);
        }
        final StatefulConnection<String, String> command = commandConnection;
        if (command != null) {
            closeQuietly(command);
        }
    }

    /**
     * Stops the heartbeat, then closes the connections and Lettuce's threads. Features give back
     * what they hold before this (the server stops them first).
     */
    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        scheduler.shutdownNow();
        closeConnections();
        try {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        } catch (RuntimeException e) {
            LOG.debug("redis client shutdown: {}", e.toString());
        }
        try {
            resources.shutdown(0, 2, TimeUnit.SECONDS).get(3, TimeUnit.SECONDS);
        } catch (Exception e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            LOG.debug("redis resources shutdown: {}", e.toString());
        }
    }
}
