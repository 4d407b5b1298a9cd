package io.wsguard.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.wsguard.admin.AdminActions;
import io.wsguard.admin.AdminServer;
import io.wsguard.admin.ConnectionFilter;
import io.wsguard.admin.ConnectionInfo;
import io.wsguard.admin.ReloadResult;
import io.wsguard.audit.AuditLog;
import io.wsguard.audit.MacChain;
import io.wsguard.check.CloseCodes;
import io.wsguard.check.Reason;
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
import java.util.Optional;
import java.util.Set;
import java.util.StringJoiner;
import java.util.concurrent.ArrayBlockingQueue;
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
 * Jetty server, the admin port, the policy file's watcher. {@link #stop()} stops them in reverse, so
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
    /** Limit counters and buckets by route name; they outlive a reload (SPEC §6: it drops nothing). */
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
    /** {@code rateLimitStore.type: redis}: the buckets all routes share with other instances; else null. */
    private RedisBuckets sharedBuckets;

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
        auditor = new Auditor(auditLog);
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
        // Started first, before anything uses them, so that no upstream client adopts them as its
        // own and stops them when a reload retires it (Jetty manages only beans not yet running).
        addBean(threads);
        addBean(scheduler);
        addBean(new Part("metrics", null, metrics::close));
        addBean(new Part("audit log", null, auditLog::close));
        final RateLimitStorePolicy store = loaded.policy().rateLimitStore();
        if (store.type() == RateLimitStorePolicy.Type.REDIS) {
            // Connects in the background: wsguard starts, and falls back, while Redis is down.
            sharedBuckets = RedisBuckets.connect(store.redis().orElseThrow(), metrics.registry());
            addBean(new Part("redis", null, sharedBuckets::close));
        }
        addBean(new Part("jwks executor", null, jwksExecutor::shutdownNow));
        try {
            policy = compile(loaded);
        } catch (RuntimeException e) {
            if (sharedBuckets != null) {
                sharedBuckets.close();
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
                server.addBean(new CertificateReloader(
                        listener.tls().get(),
                        ssl,
                        CertificateReloader.DEFAULT_INTERVAL,
                        problem ->
                                auditor.config(Reason.CONFIG_REJECTED, "tls certificate reload refused: " + problem)));
            } else {
                connector = new LingeringConnector(
                        server, linger, handshakeTimeouts::increment, new HttpConnectionFactory(http));
            }
            connector.setHost(listener.host());
            connector.setPort(listener.port());
            // How a request knows its listener: UpgradeHandler picks the listener's route table by this name.
            connector.setName(listener.name());
            // SPEC §3 proxy.handshakeTimeout: the HTTP phase idles out, and a socket not upgraded by then
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
        addBean(new PolicyWatcher(loaded.policy().source(), POLICY_POLL, this::reloadFromWatcher));
        super.doStart();
        LOG.debug("started with {} route(s)", policy.routeList().size());
    }

    private CompiledPolicy compile(LoadedPolicy next) {
        return CompiledPolicy.compile(next, limits, sharedBuckets, threads, jwksExecutor);
    }

    private void startPolicy(CompiledPolicy compiled) throws Exception {
        compiled.start(
                threads,
                scheduler,
                route -> new ServerEvents(connections, metrics.route(route), auditor, this::isDraining));
    }

    /**
     * Reloads the policy file (SIGHUP, a change of the file, {@code POST /admin/reload}). A valid
     * file applies to new connections; open ones keep the routes they started with. An invalid one
     * is refused, audited as {@code config_rejected}, and the running policy stays (SPEC §6).
     * Listeners, the admin port, the audit log and the rate-limit store are bound at start:
     * changing them needs a restart.
     */
    public synchronized ReloadResult reload() {
        final Path source = loaded.policy().source();
        final LoadedPolicy next;
        final CompiledPolicy compiled;
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
        } catch (PolicyException e) {
            return rejected(e.problems().stream().map(PolicyProblem::toString).toList());
        } catch (Exception e) {
            return rejected(List.of(source + ": " + e.getMessage()));
        }
        final CompiledPolicy old = policy;
        loaded = next;
        policy = compiled;
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

    public String auditLocation() {
        return loaded.policy().audit().sink() == io.wsguard.policy.AuditPolicy.Sink.STDOUT
                ? "stdout"
                : loaded.policy().audit().path().toString();
    }

    /**
     * Graceful drain (SPEC §6): readiness turns 503 and new upgrades get 503, open connections get
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

    /** The Redis store of {@code rateLimitStore.type: redis}, or null (tests). */
    RedisBuckets sharedBuckets() {
        return sharedBuckets;
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
        public List<ConnectionInfo> connections() {
            final Instant now = Instant.now();
            final List<ConnectionInfo> infos = new ArrayList<>();
            for (ProxySession s : connections.sessions()) {
                infos.add(new ConnectionInfo(
                        s.id(),
                        s.route(),
                        s.clientIp(),
                        s.subject(),
                        s.openedAt(),
                        Duration.between(s.openedAt(), now).toSeconds(),
                        s.messagesIn(),
                        s.messagesOut(),
                        s.bytesIn(),
                        s.bytesOut()));
            }
            return infos;
        }

        @Override
        public int close(ConnectionFilter filter) {
            final String detail = "closed by operator (" + describe(filter) + ")";
            int closed = 0;
            for (ProxySession s : connections.sessions()) {
                if (filter.matches(s.subject(), s.clientIp(), s.route()) && s.closeByOperator(detail)) {
                    closed++;
                }
            }
            return closed;
        }

        /**
         * The filter as the request gave it, e.g. {@code sub=alice route=chat}: subjects, IPs and route names, never
         * secrets.
         */
        private static String describe(ConnectionFilter filter) {
            final StringJoiner given = new StringJoiner(" ");
            filter.sub().ifPresent(sub -> given.add("sub=" + sub));
            filter.client().ifPresent(client -> given.add("client=" + client));
            filter.route().ifPresent(route -> given.add("route=" + route));
            return given.toString();
        }
    }
}
