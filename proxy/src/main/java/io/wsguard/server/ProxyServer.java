package io.wsguard.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.wsguard.admin.AdminActions;
import io.wsguard.admin.AdminServer;
import io.wsguard.admin.Broadcast;
import io.wsguard.admin.ConnectionFilter;
import io.wsguard.admin.ConnectionInfo;
import io.wsguard.admin.ReloadResult;
import io.wsguard.admin.RoutesHash;
import io.wsguard.audit.AuditLog;
import io.wsguard.audit.MacChain;
import io.wsguard.check.CloseCodes;
import io.wsguard.check.Reason;
import io.wsguard.cluster.ClusterEvents;
import io.wsguard.cluster.ConnectionLeases;
import io.wsguard.cluster.Members;
import io.wsguard.cluster.RedisStore;
import io.wsguard.cluster.Revocations;
import io.wsguard.handshake.SharedState;
import io.wsguard.limit.LimitState;
import io.wsguard.limit.RedisBuckets;
import io.wsguard.metrics.Metrics;
import io.wsguard.policy.ListenerPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.Policy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyLoader;
import io.wsguard.policy.PolicyProblem;
import io.wsguard.policy.RateLimitStorePolicy;
import io.wsguard.relay.ProxySession;
import io.wsguard.tls.CertificateReloader;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.StringJoiner;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.component.LifeCycle;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.WebSocketComponents;
import org.eclipse.jetty.websocket.core.server.WebSocketServerComponents;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running proxy: one Jetty server with a connector per listener, the compiled policy, the audit
 * log, metrics and the admin port. Starts, reports where it listens, drains and stops.
 *
 * <p>Its parts are beans, added in {@link #doStart()} in the order they start: the thread pool and
 * scheduler, metrics, the audit log, the Redis store, the JWKS executor, the compiled policies, the
 * Jetty server, the admin port, the cluster view, the policy file's watcher. {@link #stop()} stops them in reverse, so
 * nothing is stopped while a part started after it may still use it.
 */
public final class ProxyServer extends ContainerLifeCycle {

    private static final Logger LOG = LoggerFactory.getLogger(ProxyServer.class);
    /** How long a closing client socket may be drained before it is closed anyway. */
    private static final Duration LINGER = Duration.ofSeconds(2);
    /**
     * How much a closing client socket may be drained. A client still sending when it is closed reads
     * our CLOSE frame only if the reset comes after it; at 1 MiB (a millisecond on loopback) a busy
     * client sometimes missed it (1006 in MessageContentTest's 50 MB message). Reading and discarding
     * costs little and LINGER bounds it in time.
     */
    private static final long LINGER_MAX_BYTES = 16L * 1024 * 1024;
    /** How often the policy file is checked for changes. */
    private static final Duration POLICY_POLL = Duration.ofSeconds(1);

    private volatile LoadedPolicy loaded;
    private final QueuedThreadPool threads = new QueuedThreadPool(256, 8);
    private final Scheduler scheduler = new ScheduledExecutorScheduler("wsguard-scheduler", true);
    private final Server server = new Server(threads);
    private final Linger linger = new Linger(LINGER, LINGER_MAX_BYTES);
    private final ConnectionRegistry connections = new ConnectionRegistry();
    /**
     * Policies a reload replaced while connections still used them: each stops when its last one
     * closes, and whatever is left stops with the proxy.
     */
    private final Set<CompiledPolicy> retired = ConcurrentHashMap.newKeySet();

    private final Metrics metrics = new Metrics();
    /** Sockets closed for not completing their handshake within {@code proxy.handshakeTimeout}. */
    private final Counter handshakeTimeouts = Counter.builder("wsguard.handshake.timeouts")
            .description("Client sockets closed for not completing a WebSocket handshake within proxy.handshakeTimeout")
            .register(metrics.registry());
    /** Limit counters and buckets by route name; they outlive a reload (README, Admin port: it drops nothing). */
    private static final Duration DRAIN_SETTLE = Duration.ofMillis(200);
    /** The end of the drain budget kept for clients to answer a 1001 wsguard sent on its own. */
    private static final Duration CLOSE_HANDSHAKE_RESERVE = Duration.ofSeconds(1);

    private final LimitState limits = new LimitState();
    /**
     * Verifies tokens whose key set comes from a {@code jwksUri}: a fetch blocks for up to its
     * timeout, so it never runs on a Jetty thread. Bounded: past the queue a handshake fails closed
     * with 503 rather than piling up.
     */
    private final ThreadPoolExecutor jwksExecutor = jwksExecutor();
    /** {@code rateLimitStore.type: redis}: the Redis this instance shares with the others; else null. */
    private RedisStore redis;
    /** The buckets all routes share with other instances, on {@link #redis}; else null. */
    private RedisBuckets sharedBuckets;
    /** The connection caps all instances share, on {@link #redis}; else null. */
    private ConnectionLeases leases;
    /** Operators' closes and revocations to and from the other instances, on {@link #redis}; else null. */
    private ClusterEvents clusterEvents;
    /** The subjects and token ids revoked ({@code POST /admin/revoke}): shared through {@link #redis} if any. */
    private Revocations revocations;
    /** This instance in the cluster view: its record in Redis, {@code GET /admin/cluster}. */
    private Members members;
    /** {@link RoutesHash} of the routes in force; recomputed on reload. */
    private volatile String routesHash;

    private final List<ServerConnector> connectors = new ArrayList<>();
    private volatile boolean draining;
    private volatile CompiledPolicy policy;
    private Auditor auditor;
    private AdminServer admin;

    public ProxyServer(LoadedPolicy loaded) {
        this.loaded = loaded;
    }

    /** Compiles the policy (throwing {@link io.wsguard.policy.PolicyException} if it cannot) and starts serving. */
    @Override
    protected void doStart() throws Exception {
        threads.setName("wsguard");
        server.addBean(scheduler);
        server.addBean(linger);
        final AuditLog auditLog = AuditLog.from(loaded.policy().audit(), Clock.systemUTC());
        auditor = new Auditor(auditLog, loaded.policy().audit().connections());
        if (loaded.policy().audit().integrityKey().filter(key -> !key.isEmpty()).isPresent()) {
            // The chain's length, restored from disk at start: a scraper keeps a record of it away from
            // this host, against which a log cut short shows (wsguard audit --verify --expect-last).
            FunctionCounter.builder("wsguard.audit.lines", auditLog, log -> log.chainHead()
                            .map(head -> head.seq() + 1.0)
                            .orElse(0.0))
                    .description("lines of the audit log's integrity chain, ever (the last sequence number + 1)")
                    .register(metrics.registry());
        }
        // Events summed into one line rather than written on their own: over a client's
        // audit.linesPerClient, or without their client once too many clients have a budget.
        FunctionCounter.builder("wsguard.audit.events.summed", auditLog, AuditLog::eventsOverBudget)
                .tag("why", "client_budget")
                .description("audit events summed into a client's over-budget line (audit.linesPerClient)")
                .register(metrics.registry());
        FunctionCounter.builder("wsguard.audit.events.summed", auditLog, AuditLog::eventsPastClientCap)
                .tag("why", "client_cap")
                .description("audit events summed without their client: too many clients had a line budget")
                .register(metrics.registry());
        // Connection lines (audit.connections) lost because the writer fell that far behind; each loss
        // is also reported in the log itself.
        FunctionCounter.builder("wsguard.audit.connections.dropped", auditLog, AuditLog::connectionsDropped)
                .description("audit connection lines dropped: the audit writer's queue was full")
                .register(metrics.registry());
        // Audit lines lost after they were formatted: a sink that failed (disk full), and the
        // syslog sink's drops while its server is away (buffer full) or for a line too large.
        FunctionCounter.builder("wsguard.audit.dropped", auditLog, AuditLog::linesFailed)
                .tag("reason", "sink_error")
                .description("audit lines lost: the sink failed, the buffer was full or the line too large to send")
                .register(metrics.registry());
        if (loaded.policy().audit().sink() == io.wsguard.policy.AuditPolicy.Sink.SYSLOG) {
            for (String reason : List.of("buffer_full", "oversized")) {
                FunctionCounter.builder("wsguard.audit.dropped", auditLog, log -> log.linesDropped(reason))
                        .tag("reason", reason)
                        .description(
                                "audit lines lost: the sink failed, the buffer was full or the line too large to send")
                        .register(metrics.registry());
            }
        }
        // Started first, before anything uses them, so that no upstream client adopts them as its
        // own and stops them when a reload retires it (Jetty manages only beans not yet running).
        addBean(threads);
        addBean(scheduler);
        addBean(new Part("metrics", null, metrics::close));
        addBean(new Part("audit log", null, auditLog::close));
        final RateLimitStorePolicy store = loaded.policy().rateLimitStore();
        if (store.type() == RateLimitStorePolicy.Type.REDIS) {
            // Connects in the background: wsguard starts, and falls back, while Redis is down.
            redis = RedisStore.connect(store.redis().orElseThrow(), metrics.registry());
            sharedBuckets = new RedisBuckets(redis);
            // The store reports each outage once, at its start, and its end once: one audit line each.
            final String mode = redis.onUnavailable().name().toLowerCase(java.util.Locale.ROOT);
            redis.addStatusListener(new RedisStore.StatusListener() {
                @Override
                public void unavailable(String where, String cause) {
                    auditor.storeUnavailable(where, cause, mode);
                }

                @Override
                public void available(String where) {
                    auditor.storeAvailable(where);
                }
            });
            addBean(new Part("redis", null, redis::close));
            // Stops before the store (beans stop last added first) and after the connections
            // closed: their slots go back to Redis while it can still be told.
            leases = new ConnectionLeases(redis);
            addBean(new Part("connection leases", null, leases::close));
            clusterEvents = new ClusterEvents(redis, threads);
            clusterEvents.on(CLOSE_EVENT, this::closeAnnounced);
            revocations = Revocations.shared(redis, clusterEvents, threads, this::closeRevoked);
        } else {
            revocations = Revocations.local(this::closeRevoked);
        }
        addBean(new Part("jwks executor", null, jwksExecutor::shutdownNow));
        try {
            policy = compile(loaded);
            routesHash = RoutesHash.of(loaded.policy().routes());
        } catch (RuntimeException e) {
            if (redis != null) {
                redis.close();
            }
            throw e;
        }
        final WebSocketComponents components = WebSocketServerComponents.ensureWebSocketComponents(server);
        final List<ListenerPolicy> listeners = loaded.policy().listeners();
        for (int i = 0; i < listeners.size(); i++) {
            final ListenerPolicy listener = listeners.get(i);
            final HttpConfiguration http = new HttpConfiguration();
            http.setSendServerVersion(false);
            http.setSendXPoweredBy(false);
            // The HTTP phase only reads an upgrade request and writes its answer. With Jetty's
            // default direct buffers, 5,000 WSS handshakes left 96-128 MB of native memory (NMT
            // "Other", ~3,500 buffers of 32 KiB no live object used) until a collection freed it.
            http.setUseOutputDirectByteBuffers(false);
            http.setUseInputDirectByteBuffers(false);
            final ServerConnector connector;
            final SslContextFactory.Server ssl = policy.listenerTls(i);
            if (ssl != null) {
                http.addCustomizer(new SecureRequestCustomizer());
                connector = new LingeringConnector(
                        server,
                        linger,
                        handshakeTimeouts::increment,
                        new SslConnectionFactory(ssl, "http/1.1"),
                        new HttpConnectionFactory(http));
                metrics.certificates().serve(listener.name(), ssl.getKeyStore());
                server.addBean(new CertificateReloader(
                        listener.tls().get(),
                        ssl,
                        CertificateReloader.DEFAULT_INTERVAL,
                        problem -> auditor.config(Reason.CONFIG_REJECTED, "tls certificate reload refused: " + problem),
                        () -> metrics.certificates().serve(listener.name(), ssl.getKeyStore())));
            } else {
                connector = new LingeringConnector(
                        server, linger, handshakeTimeouts::increment, new HttpConnectionFactory(http));
            }
            connector.setHost(listener.host());
            connector.setPort(listener.port());
            // How a request knows its listener: UpgradeHandler picks the listener's route table by this name.
            connector.setName(listener.name());
            // docs/policy.md, proxy.handshakeTimeout: the HTTP phase idles out, and a socket not upgraded by then
            // is closed however busily it trickles; a WebSocket session sets its own idle timeout.
            connector.setIdleTimeout(loaded.policy().proxy().handshakeTimeout().toMillis());
            server.addConnector(connector);
            connectors.add(connector);
        }
        server.setHandler(new UpgradeHandler(this, components));
        server.setStopTimeout(0);
        // The running policy's upstream clients, and those of policies a reload replaced while
        // connections still used them (each stops when its last one closes).
        addBean(new Part("policies", () -> startPolicy(policy), () -> {
            policy.stop();
            retired.forEach(CompiledPolicy::stop);
        }));
        addBean(server);
        if (loaded.policy().admin().isPresent()) {
            final AdminServer admin =
                    new AdminServer(loaded.policy().admin().get(), metrics, () -> !draining, new Actions());
            this.admin = admin;
            addBean(new Part("admin", admin::start, admin::stop));
        }
        // Last to start, when every port is bound (its record names them), and so first to stop:
        // a stopping instance leaves the cluster view before it drains.
        members = new Members(
                redis, redis == null ? Members.standaloneId() : redis.instanceId(), this::member, metrics.registry());
        addBean(new Part("cluster view", members::start, members::close));
        addBean(new PolicyWatcher(loaded.policy().source(), POLICY_POLL, this::reloadFromWatcher));
        super.doStart();
        LOG.debug("started with {} route(s)", policy.routeList().size());
    }

    private CompiledPolicy compile(LoadedPolicy next) {
        return CompiledPolicy.compile(
                next, limits, new SharedState(sharedBuckets, leases, revocations), threads, jwksExecutor);
    }

    private void startPolicy(CompiledPolicy compiled) throws Exception {
        compiled.start(
                threads,
                scheduler,
                route -> new ServerEvents(connections, metrics.route(route), auditor, this::isDraining, revocations));
    }

    /**
     * Reloads the policy file (SIGHUP, a change of the file, {@code POST /admin/reload}). A valid
     * file applies to new connections; open ones keep the routes they started with. An invalid one
     * is refused, audited as {@code config_rejected}, and the running policy stays (README, Admin port).
     * Listeners, the admin port, the audit log and the rate-limit store are bound at start:
     * changing them needs a restart.
     */
    public synchronized ReloadResult reload() {
        final Path source = loaded.policy().source();
        final LoadedPolicy next;
        final CompiledPolicy compiled;
        final String hash;
        try {
            next = PolicyLoader.load(source);
            final List<String> restartOnly = restartOnlyChanges(loaded.policy(), next.policy());
            if (!restartOnly.isEmpty()) {
                return rejected(restartOnly.stream()
                        .map(what -> source + ": " + what + " changed; restart wsguard to apply it")
                        .toList());
            }
            compiled = compile(next);
            startPolicy(compiled);
            hash = RoutesHash.of(next.policy().routes());
        } catch (PolicyException e) {
            return rejected(e.problems().stream().map(PolicyProblem::toString).toList());
        } catch (Exception e) {
            return rejected(List.of(source + ": " + e.getMessage()));
        }
        final CompiledPolicy old = policy;
        loaded = next;
        policy = compiled;
        routesHash = hash;
        members.beat();
        limits.retain(next.policy().routes());
        old.retire();
        retired.removeIf(CompiledPolicy::isStopped);
        if (!old.isStopped()) {
            retired.add(old);
        }
        LOG.info("policy reloaded from {}", source);
        return ReloadResult.ok();
    }

    private void reloadFromWatcher() {
        final ReloadResult result = reload();
        if (!result.applied()) {
            LOG.warn(
                    "policy file changed but was not applied: {}",
                    result.problems().get(0));
        }
    }

    private ReloadResult rejected(List<String> problems) {
        auditor.config(Reason.CONFIG_REJECTED, problems.size() + " problem(s); first: " + problems.get(0));
        LOG.warn("policy reload refused: {}", String.join("; ", problems));
        return ReloadResult.rejected(problems);
    }

    private static List<String> restartOnlyChanges(Policy running, Policy next) {
        final List<String> changed = new ArrayList<>();
        if (!running.listeners().equals(next.listeners())) {
            changed.add("listeners");
        }
        if (!running.admin().equals(next.admin())) {
            changed.add("admin");
        }
        if (!running.audit().equals(next.audit())) {
            changed.add("audit");
        }
        if (!running.rateLimitStore().equals(next.rateLimitStore())) {
            changed.add("rateLimitStore");
        }
        return changed;
    }

    /** This instance's record in the cluster view; on the Redis store's thread at each heartbeat. */
    private Members.Local member() {
        return new Members.Local(listenerUrls(), adminUrl(), connections.size(), routesHash, metrics.blockedByReason());
    }

    /** One line per listener, for the ready message: {@code wss://0.0.0.0:8443}. */
    public List<String> listenerUrls() {
        final List<String> urls = new ArrayList<>();
        final List<ListenerPolicy> listeners = loaded.policy().listeners();
        for (int i = 0; i < connectors.size(); i++) {
            final String scheme = listeners.get(i).tls().isPresent() ? "wss" : "ws";
            urls.add(scheme + "://" + listeners.get(i).host() + ":"
                    + connectors.get(i).getLocalPort());
        }
        return urls;
    }

    /** The bound port of listener {@code index} (useful when the policy says port 0). */
    public int port(int index) {
        return connectors.get(index).getLocalPort();
    }

    /** Listener {@code index}'s connector, for tests that look at its sockets. */
    ServerConnector connector(int index) {
        return connectors.get(index);
    }

    /** The admin port's URL, or null without an admin section. */
    public String adminUrl() {
        return admin == null ? null : "http://" + loaded.policy().admin().get().host() + ":" + admin.port();
    }

    /** The probes port's URL ({@code admin.probes}), or null without one. */
    public String probesUrl() {
        if (admin == null || admin.probesPort() < 0) {
            return null;
        }
        return "http://" + loaded.policy().admin().get().probes().orElseThrow().host() + ":" + admin.probesPort();
    }

    public String auditLocation() {
        final io.wsguard.policy.AuditPolicy audit = loaded.policy().audit();
        return switch (audit.sink()) {
            case STDOUT -> "stdout";
            case SYSLOG ->
                audit.syslog()
                        .map(s -> "syslog " + s.transport().scheme() + "://"
                                + (s.host().contains(":") ? "[" + s.host() + "]" : s.host()) + ":" + s.port())
                        .orElse("syslog");
            case FILE -> audit.path().toString();
        };
    }

    /**
     * Graceful drain (README, Admin port): readiness turns 503 and new upgrades get 503, open connections get
     * 1001 after the frames in flight, then everything stops within {@code drainTimeout}.
     */
    public void drainAndStop() {
        draining = true;
        final Duration drainTimeout = loaded.policy().proxy().drainTimeout();
        final long deadline = System.nanoTime() + drainTimeout.toNanos();
        // Messages clients wrote just before the signal may still sit unread in socket buffers; once an
        // upstream has been asked to close, they could no longer be relayed. A short settle lets the
        // relay read and pass them on first (a cold or paused JVM took tens of milliseconds in CI).
        try {
            TimeUnit.MILLISECONDS.sleep(Math.min(DRAIN_SETTLE.toMillis(), drainTimeout.toMillis() / 4));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (ProxySession session : connections.sessions()) {
            session.shutdown();
        }
        // A session waits up to 5 s for its upstream to answer the drain's CLOSE before the client
        // gets 1001. With a shorter drainTimeout, or an upstream that never answers, the client
        // must still get its 1001 in time to read it: sent while the end of the budget is left for
        // the close handshake, then whatever is still open at the deadline is dropped.
        final long reserve = Math.min(CLOSE_HANDSHAKE_RESERVE.toNanos(), drainTimeout.toNanos() / 2);
        awaitNoConnections(deadline - reserve);
        if (connections.size() > 0) {
            for (ProxySession session : connections.sessions()) {
                session.terminate(
                        CloseCodes.SHUTDOWN, "wsguard shutting down", CloseCodes.SHUTDOWN, "wsguard shutting down");
            }
            awaitNoConnections(deadline);
        }
        if (connections.size() > 0) {
            LOG.warn("drain timeout: {} connection(s) still open, closing them", connections.size());
            connections.sessions().forEach(ProxySession::abortBoth);
        }
        // Give closing sockets their linger before the threads go away.
        awaitUntil(() -> linger.lingering() == 0, System.nanoTime() + LINGER.toNanos());
        try {
            stop();
        } catch (Exception e) {
            LOG.debug("stop: {}", e.toString());
        }
    }

    private static ThreadPoolExecutor jwksExecutor() {
        final int threads = Math.max(2, Runtime.getRuntime().availableProcessors());
        final AtomicInteger count = new AtomicInteger();
        final ThreadPoolExecutor executor = new ThreadPoolExecutor(
                threads, threads, 30, TimeUnit.SECONDS, new ArrayBlockingQueue<>(4096), runnable -> {
                    final Thread thread = new Thread(runnable, "wsguard-jwks-" + count.incrementAndGet());
                    thread.setDaemon(true);
                    return thread;
                });
        executor.allowCoreThreadTimeOut(true);
        return executor;
    }

    /** Stops a part; one that fails to stop must not keep the parts started before it running. */
    @Override
    protected void stop(LifeCycle part) {
        try {
            part.stop();
        } catch (Exception e) {
            LOG.debug("{} stop: {}", part, e.toString());
        }
    }

    /** A part that is not a Jetty life cycle of its own, as a bean: what starts it and what stops it. */
    private static final class Part extends AbstractLifeCycle {
        /** What a part does to start or stop. */
        @FunctionalInterface
        interface Step {
            void run() throws Exception;
        }

        private final String name;
        private final Step start;
        private final Step stop;

        /** {@code start} null: nothing to do, it runs already. */
        Part(String name, Step start, Step stop) {
            this.name = name;
            this.start = start;
            this.stop = stop;
        }

        @Override
        protected void doStart() throws Exception {
            if (start != null) {
                start.run();
            }
        }

        @Override
        protected void doStop() throws Exception {
            stop.run();
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** Writes out the audit log's open coalescing windows now (tests, and before exit). */
    public void flushAudit() {
        auditor.log().flush();
    }

    boolean isDraining() {
        return draining;
    }

    CompiledPolicy policy() {
        return policy;
    }

    ConnectionRegistry connections() {
        return connections;
    }

    Auditor auditor() {
        return auditor;
    }

    public Metrics metrics() {
        return metrics;
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /** Jetty's thread pool: where work too long for a selector thread goes. */
    Executor threads() {
        return threads;
    }

    LimitState limits() {
        return limits;
    }

    /** Returns when no connection is open any more, or at {@code deadline} (a {@link System#nanoTime()}). */
    private void awaitNoConnections(long deadline) {
        awaitUntil(() -> connections.size() == 0, deadline);
    }

    /** Polls {@code done} every 20 ms until it holds or {@code deadline} (a {@link System#nanoTime()}) passes. */
    private static void awaitUntil(BooleanSupplier done, long deadline) {
        while (!done.getAsBoolean() && System.nanoTime() - deadline < 0) {
            try {
                TimeUnit.MILLISECONDS.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** The Redis buckets of {@code rateLimitStore.type: redis}, or null (tests). */
    RedisBuckets sharedBuckets() {
        return sharedBuckets;
    }

    /** The shared connection caps of {@code rateLimitStore.type: redis}, or null (tests). */
    ConnectionLeases leases() {
        return leases;
    }

    /** The Redis of {@code rateLimitStore.type: redis}, or null (tests). */
    RedisStore redis() {
        return redis;
    }

    /** The pub/sub event of an operator's close, sent to every instance. */
    private static final String CLOSE_EVENT = "close";

    /**
     * Closes this instance's open connections that {@code filter} matches with 1008, each audited
     * with {@code detail}; returns how many were told to close.
     */
    private int closeMatching(ConnectionFilter filter, String detail) {
        int closed = 0;
        for (ProxySession s : connections.sessions()) {
            if (filter.matches(s.subject(), s.tokenId(), s.clientIp(), s.route()) && s.closeByOperator(detail)) {
                closed++;
            }
        }
        return closed;
    }

    /** A revocation in force here: its open connections close. */
    private int closeRevoked(Revocations.Kind kind, String value, String detail) {
        final Optional<String> id = Optional.of(value);
        return closeMatching(
                kind == Revocations.Kind.SUB
                        ? new ConnectionFilter(id, Optional.empty(), Optional.empty(), Optional.empty())
                        : new ConnectionFilter(Optional.empty(), id, Optional.empty(), Optional.empty()),
                detail);
    }

    /** Another instance's operator closed connections: this instance closes and audits its own. */
    private void closeAnnounced(Map<String, String> message) {
        final ConnectionFilter filter;
        try {
            filter = new ConnectionFilter(
                    Optional.ofNullable(message.get("sub")),
                    Optional.ofNullable(message.get("jti")),
                    Optional.ofNullable(message.get("client")),
                    Optional.ofNullable(message.get("route")));
        } catch (IllegalArgumentException noFilter) {
            // A close that names nothing would close everything: never.
            LOG.warn("cluster events: ignored a close from {} without a filter", message.get("from"));
            return;
        }
        final int closed = closeMatching(
                filter,
                "closed by operator on instance " + message.get("from") + " (" + Actions.describe(filter) + ")");
        LOG.info(
                "close from instance {} ({}): {} connection(s) closed here",
                message.get("from"),
                Actions.describe(filter),
                closed);
    }

    /** What the admin port may do to the running proxy. */
    private final class Actions implements AdminActions {
        @Override
        public ReloadResult reload() {
            return ProxyServer.this.reload();
        }

        @Override
        public Object effectivePolicy() {
            return loaded.policy();
        }

        @Override
        public Optional<MacChain.Head> auditHead() {
            return auditor.log().chainHead();
        }

        @Override
        public Optional<String> degraded() {
            final RedisStore store = redis;
            if (store == null || store.available()) {
                return Optional.empty();
            }
            return Optional.of("shared store redis at " + store.where() + " unavailable (" + store.lastFailure()
                    + "); shared features decide as onUnavailable: "
                    + store.onUnavailable().name().toLowerCase(java.util.Locale.ROOT));
        }

        @Override
        public List<ConnectionInfo> connections() {
            final Instant now = Instant.now();
            final List<ConnectionInfo> infos = new ArrayList<>();
            for (ProxySession s : connections.sessions()) {
                infos.add(new ConnectionInfo(
                        s.id(),
                        s.route(),
                        s.clientIp(),
                        s.subject(),
                        s.tokenId(),
                        s.openedAt(),
                        Duration.between(s.openedAt(), now).toSeconds(),
                        s.messagesIn(),
                        s.messagesOut(),
                        s.bytesIn(),
                        s.bytesOut(),
                        s.relayPath()));
            }
            return infos;
        }

        @Override
        public CompletionStage<Members.View> cluster() {
            return members.view();
        }

        @Override
        public int close(ConnectionFilter filter) {
            return closeMatching(filter, "closed by operator (" + describe(filter) + ")");
        }

        @Override
        public CompletionStage<Broadcast> closeEverywhere(ConnectionFilter filter) {
            final int closed = close(filter);
            if (clusterEvents == null) {
                return CompletableFuture.completedStage(
                        Broadcast.local(closed, "rateLimitStore is local: there is no other instance to tell"));
            }
            final Map<String, String> fields = new java.util.HashMap<>();
            filter.sub().ifPresent(sub -> fields.put("sub", sub));
            filter.jti().ifPresent(jti -> fields.put("jti", jti));
            filter.client().ifPresent(client -> fields.put("client", client));
            filter.route().ifPresent(route -> fields.put("route", route));
            return clusterEvents
                    .publish("close", CLOSE_EVENT, fields)
                    .handle((subscribers, failure) -> failure == null
                            ? Broadcast.cluster(closed, subscribers, ClusterEvents.CHANNEL)
                            : Broadcast.local(
                                    closed,
                                    "Redis unavailable (" + redis.lastFailure()
                                            + "): the other instances were not told"));
        }

        @Override
        public CompletionStage<Revocations.Outcome> revoke(Revocations.Kind kind, String value, Duration ttl) {
            return revocations.revoke(kind, value, ttl);
        }

        @Override
        public List<Revocations.InForce> revocations() {
            return revocations.inForce();
        }

        @Override
        public String localOnly() {
            if (redis == null) {
                return "rateLimitStore is local: this instance's revocations only";
            }
            return redis.available()
                    ? null
                    : "Redis unavailable (" + redis.lastFailure() + "): this instance's revocations only, as of now";
        }

        /**
         * The filter as the request gave it, e.g. {@code sub=alice route=chat}: subjects, IPs and route names, never
         * secrets.
         */
        static String describe(ConnectionFilter filter) {
            final StringJoiner given = new StringJoiner(" ");
            filter.sub().ifPresent(sub -> given.add("sub=" + sub));
            filter.jti().ifPresent(jti -> given.add("jti=" + jti));
            filter.client().ifPresent(client -> given.add("client=" + client));
            filter.route().ifPresent(route -> given.add("route=" + route));
            return given.toString();
        }
    }
}
