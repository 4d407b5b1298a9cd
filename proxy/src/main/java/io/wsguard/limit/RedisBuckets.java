package io.wsguard.limit;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.github.bucket4j.distributed.ExpirationAfterWriteStrategy;
import io.github.bucket4j.distributed.proxy.AsyncProxyManager;
import io.github.bucket4j.redis.lettuce.Bucket4jLettuce;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.policy.RateLimitStorePolicy.OnUnavailable;
import io.wsguard.policy.RateLimitStorePolicy.RedisPolicy;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Token buckets kept in Redis ({@code rateLimitStore.type: redis}), so that every wsguard instance
 * using the same Redis shares them: Bucket4j's compare-and-swap proxy manager over one Lettuce
 * connection, used only through its async API so that no Jetty thread waits for Redis. About 115 µs
 * per call on loopback: fine per handshake, far too slow per message.
 *
 * <p>Redis may be down: wsguard starts anyway and connects in the background, retrying every
 * {@link #CONNECT_RETRY}. A call fails fast (Lettuce rejects commands while disconnected, and
 * times out after {@link #REQUEST_TIMEOUT}); the caller then answers as {@code onUnavailable} says
 * ({@link #onUnavailable()}). After a failure a breaker skips Redis for {@code breakerWindow}, so a
 * dead or hung Redis does not cost a timeout per handshake; then one call probes it and, if it
 * answers, shared limiting resumes. Each fallback counts in {@code wsguard_ratelimit_store_fallbacks_total};
 * a warning is logged at most once a minute.
 *
 * <p>Only rates are shared. Connection caps ({@code limits.connections}) stay per instance: a
 * shared count of open connections would need leases renewed by heartbeats, so that a crashed
 * instance's connections are forgotten; that is a different design.
 *
 * <p>Thread-safe. One per running proxy, shared by all routes; {@link #close()} at stop.
 */
public final class RedisBuckets implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RedisBuckets.class);
    /** How long one Redis call may take before its limit is decided without Redis. */
    static final Duration REQUEST_TIMEOUT = Duration.ofMillis(200);
    /** How long Redis is skipped after a failed call. */
    public static final Duration BREAKER_WINDOW = Duration.ofSeconds(2);
    /** How often a first connection is retried while Redis cannot be reached at start. */
    static final Duration CONNECT_RETRY = Duration.ofSeconds(1);

    private static final long WARN_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);

    private final OnUnavailable onUnavailable;
    private final RedisURI uri;
    private final String where;
    private final long breakerNanos;
    private final ClientResources resources;
    private final RedisClient client;
    private final ScheduledExecutorService connector;
    private final Counter fallbacks;
    private volatile StatefulRedisConnection<String, byte[]> connection;
    private volatile AsyncProxyManager<String> buckets;
    /** 0 while the breaker is closed; otherwise the nanoTime until which Redis is skipped. */
    private final AtomicLong openUntil = new AtomicLong();

    private final AtomicLong nextWarning = new AtomicLong(System.nanoTime());
    private final AtomicBoolean closed = new AtomicBoolean();

    private RedisBuckets(RedisPolicy policy, MeterRegistry registry, Duration breakerWindow) {
        this.onUnavailable = policy.onUnavailable();
        this.uri = RedisURI.create(policy.uri());
        this.uri.setTimeout(REQUEST_TIMEOUT);
        // Never the URI itself: it may hold a password.
        this.where = uri.getHost() + ":" + uri.getPort();
        this.breakerNanos = breakerWindow.toNanos();
        this.resources = ClientResources.builder()
                .ioThreadPoolSize(2)
                .computationThreadPoolSize(2)
                .reconnectDelay(Delay.constant(CONNECT_RETRY))
                .build();
        this.client = RedisClient.create(resources);
        // Lettuce's defaults queue commands while disconnected and time out after 60 s: every
        // handshake would hang through an outage. Reject at once instead, and time out quickly.
        client.setOptions(ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(REQUEST_TIMEOUT))
                .socketOptions(SocketOptions.builder()
                        .connectTimeout(Duration.ofSeconds(1))
                        .build())
                .build());
        this.connector = Executors.newSingleThreadScheduledExecutor(runnable -> {
            final Thread thread = new Thread(runnable, "wsguard-redis-connect");
            thread.setDaemon(true);
            return thread;
        });
        this.fallbacks = registry == null
                ? null
                : Counter.builder("wsguard.ratelimit.store.fallbacks")
                        .description("Rate-limit decisions made without Redis (unreachable, timed out, breaker open)")
                        .tag("onUnavailable", onUnavailable.name().toLowerCase(Locale.ROOT))
                        .register(registry);
    }

    /**
     * Starts connecting to {@code policy.uri()} in the background; usable at once (calls fail over
     * until the connection is up).
     *
     * @param registry where the fallback counter goes, or null
     */
    public static RedisBuckets connect(RedisPolicy policy, MeterRegistry registry) {
        return connect(policy, registry, BREAKER_WINDOW);
    }

    /** As above with the breaker window chosen (tests). */
    public static RedisBuckets connect(RedisPolicy policy, MeterRegistry registry, Duration breakerWindow) {
        final RedisBuckets store = new RedisBuckets(policy, registry, breakerWindow);
        store.connector.execute(store::tryConnect);
        return store;
    }

    /** What a limit does while Redis cannot answer. */
    public OnUnavailable onUnavailable() {
        return onUnavailable;
    }

    /** Whether the connection has been made (it may be reconnecting now). */
    public boolean connected() {
        return buckets != null;
    }

    private void tryConnect() {
        if (closed.get()) {
            return;
        }
        // Both outcomes are handled in the callback (a failure is logged and retried): the stage it returns
        // would only repeat them.
        final Future<?> unused = client.connectAsync(RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE), uri)
                .whenComplete((conn, failure) -> {
                    if (failure != null) {
                        warn(
                                "rate-limit store: cannot connect to Redis at {} ({}); retrying every "
                                        + CONNECT_RETRY.toSeconds() + " s",
                                failure);
                        if (!closed.get()) {
                            // tryConnect reports its own failures; close() ends the retries with shutdownNow.
                            final Future<?> unusedRetry = connector.schedule(
                                    this::tryConnect, CONNECT_RETRY.toMillis(), TimeUnit.MILLISECONDS);
                        }
                        return;
                    }
                    if (closed.get()) {
                        // Closed meanwhile: a connection that fails to close is as gone as one that closes.
                        final Future<?> unusedClose = conn.closeAsync();
                        return;
                    }
                    connection = conn;
                    // Built on an open connection, so nothing here connects eagerly (which would throw while
                    // Redis is down); Lettuce reconnects this connection by itself from now on.
                    buckets = Bucket4jLettuce.casBasedBuilder(conn)
                            .requestTimeout(REQUEST_TIMEOUT)
                            .expirationAfterWrite(ExpirationAfterWriteStrategy.basedOnTimeForRefillingBucketUpToMax(
                                    Duration.ofSeconds(10)))
                            .build()
                            .asAsync();
                    openUntil.set(0);
                    LOG.info("rate-limit store: connected to Redis at {}", where);
                });
    }

    /**
     * Takes one token from the shared bucket {@code key} holding {@code limit}. The stage fails
     * (quickly) when Redis cannot decide: not connected, breaker open, error or timeout; the
     * failure is already counted and logged, and the caller applies {@link #onUnavailable()}.
     *
     * @param key a Redis key that names the limit too, so that a changed limit starts afresh
     */
    public CompletionStage<ConsumptionProbe> tryConsume(String key, RateLimitPolicy limit) {
        final AsyncProxyManager<String> manager = buckets;
        if (manager == null) {
            return unavailable(new IllegalStateException("not connected"), false);
        }
        final long until = openUntil.get();
        if (until != 0) {
            final long now = System.nanoTime();
            // Past the window, exactly one caller (the one that moves the window on) probes Redis.
            if (now - until < 0 || !openUntil.compareAndSet(until, now + breakerNanos)) {
                return unavailable(new IllegalStateException("breaker open"), false);
            }
        }
        final CompletableFuture<ConsumptionProbe> call;
        try {
            final BucketConfiguration configuration = BucketConfiguration.builder()
                    .addLimit(Bandwidth.builder()
                            .capacity(limit.burst())
                            .refillGreedy(limit.rate().amount(), limit.rate().per())
                            .build())
                    .build();
            call = manager.getProxy(key, () -> CompletableFuture.completedFuture(configuration))
                    .tryConsumeAndReturnRemaining(1)
                    .orTimeout(REQUEST_TIMEOUT.toMillis() + 50, TimeUnit.MILLISECONDS);
        } catch (RuntimeException e) {
            return unavailable(e, true);
        }
        return call.handle((probe, failure) -> {
                    if (failure == null) {
                        openUntil.set(0);
                        return CompletableFuture.completedStage(probe);
                    }
                    return unavailable(failure, true);
                })
                .thenCompose(stage -> stage);
    }

    private CompletionStage<ConsumptionProbe> unavailable(Throwable cause, boolean openBreaker) {
        if (openBreaker) {
            openUntil.set(System.nanoTime() + breakerNanos);
        }
        if (fallbacks != null) {
            fallbacks.increment();
        }
        warn(
                "rate-limit store: Redis at {} unavailable ({}); limits decided as onUnavailable: "
                        + onUnavailable.name().toLowerCase(Locale.ROOT),
                cause);
        return CompletableFuture.failedStage(cause);
    }

    private void warn(String format, Throwable cause) {
        final long due = nextWarning.get();
        final long now = System.nanoTime();
        if (now - due >= 0 && nextWarning.compareAndSet(due, now + WARN_EVERY_NANOS)) {
            Throwable root = cause;
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            LOG.warn(format, where, root.getClass().getSimpleName() + ": " + root.getMessage());
        }
    }

    /** Closes the connection and Lettuce's threads. */
    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        connector.shutdownNow();
        final StatefulRedisConnection<String, byte[]> conn = connection;
        if (conn != null) {
            // Best effort: the client's shutdown below ends the connection either way.
            final Future<?> unused = conn.closeAsync();
        }
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
