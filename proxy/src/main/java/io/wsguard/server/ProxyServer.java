package io.wsguard.server;

import io.wsguard.admin.AdminActions;
import io.wsguard.admin.AdminServer;
import io.wsguard.admin.ConnectionFilter;
import io.wsguard.admin.ConnectionInfo;
import io.wsguard.admin.ReloadResult;
import io.wsguard.audit.AuditLog;
import io.wsguard.metrics.Metrics;
import io.wsguard.policy.ListenerPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.relay.Balancer;
import io.wsguard.relay.ProxySession;
import io.wsguard.tls.CertificateReloader;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
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
 */
public final class ProxyServer {

    private static final Logger LOG = LoggerFactory.getLogger(ProxyServer.class);
    /** How long a closing client socket may be drained before it is closed anyway. */
    private static final Duration LINGER = Duration.ofSeconds(2);

    private final LoadedPolicy loaded;
    private final QueuedThreadPool threads = new QueuedThreadPool(256, 8);
    private final Scheduler scheduler = new ScheduledExecutorScheduler("wsguard-scheduler", true);
    private final Server server = new Server(threads);
    private final Linger linger = new Linger(LINGER, 1024 * 1024);
    private final ConnectionRegistry connections = new ConnectionRegistry();
    private final ConcurrentHashMap<String, Balancer.Target> targets = new ConcurrentHashMap<>();
    private final Metrics metrics = new Metrics();
    private final List<ServerConnector> connectors = new ArrayList<>();
    private volatile boolean draining;
    private volatile CompiledPolicy policy;
    private Auditor auditor;
    private AdminServer admin;

    public ProxyServer(LoadedPolicy loaded) {
        this.loaded = loaded;
    }

    /** Compiles the policy (throwing {@link io.wsguard.policy.PolicyException} if it cannot) and starts serving. */
    public void start() throws Exception {
        threads.setName("wsguard");
        server.addBean(scheduler);
        server.addBean(linger);
        final AuditLog auditLog = AuditLog.from(loaded.policy().audit(), Clock.systemUTC());
        auditor = new Auditor(auditLog);
        scheduler.start();
        policy = CompiledPolicy.from(loaded, threads, scheduler,
                route -> new ServerEvents(connections, metrics.route(route), auditor, this::isDraining, targets));
        final WebSocketComponents components = WebSocketServerComponents.ensureWebSocketComponents(server);
        final List<ListenerPolicy> listeners = loaded.policy().listeners();
        for (int i = 0; i < listeners.size(); i++) {
            final ListenerPolicy listener = listeners.get(i);
            final HttpConfiguration http = new HttpConfiguration();
            http.setSendServerVersion(false);
            http.setSendXPoweredBy(false);
            final ServerConnector connector;
            final SslContextFactory.Server ssl = policy.listenerTls(i);
            if (ssl != null) {
                http.addCustomizer(new SecureRequestCustomizer());
                connector = new LingeringConnector(server, linger, new SslConnectionFactory(ssl, "http/1.1"), new HttpConnectionFactory(http));
                server.addBean(new CertificateReloader(listener.tls().get(), ssl));
            } else {
                connector = new LingeringConnector(server, linger, new HttpConnectionFactory(http));
            }
            connector.setHost(listener.host());
            connector.setPort(listener.port());
            // SPEC §3 proxy.handshakeTimeout: the HTTP phase idles out; a WebSocket session sets its own.
            connector.setIdleTimeout(loaded.policy().proxy().handshakeTimeout().toMillis());
            server.addConnector(connector);
            connectors.add(connector);
        }
        server.setHandler(new UpgradeHandler(this, components));
        server.setStopTimeout(0);
        policy.start();
        server.start();
        if (loaded.policy().admin().isPresent()) {
            admin = new AdminServer(loaded.policy().admin().get(), metrics, () -> !draining, new Actions());
            admin.start();
        }
        LOG.debug("started with {} route(s)", policy.routeList().size());
    }

    /** One line per listener, for the ready message: {@code wss://0.0.0.0:8443}. */
    public List<String> listenerUrls() {
        final List<String> urls = new ArrayList<>();
        final List<ListenerPolicy> listeners = loaded.policy().listeners();
        for (int i = 0; i < connectors.size(); i++) {
            final String scheme = listeners.get(i).tls().isPresent() ? "wss" : "ws";
            urls.add(scheme + "://" + listeners.get(i).host() + ":" + connectors.get(i).getLocalPort());
        }
        return urls;
    }

    /** The bound port of listener {@code index} (useful when the policy says port 0). */
    public int port(int index) {
        return connectors.get(index).getLocalPort();
    }

    /** The admin port's URL, or null without an admin section. */
    public String adminUrl() {
        return admin == null ? null : "http://" + loaded.policy().admin().get().host() + ":" + admin.port();
    }

    public String auditLocation() {
        return loaded.policy().audit().sink() == io.wsguard.policy.AuditPolicy.Sink.STDOUT
                ? "stdout" : loaded.policy().audit().path().toString();
    }

    /**
     * Graceful drain (SPEC §6): readiness turns 503 and new upgrades get 503, open connections get
     * 1001 after the frames in flight, then everything stops within {@code drainTimeout}.
     */
    public void drainAndStop() {
        draining = true;
        final long deadline = System.nanoTime() + loaded.policy().proxy().drainTimeout().toNanos();
        for (ProxySession session : connections.sessions()) {
            session.shutdown();
        }
        while (connections.size() > 0 && System.nanoTime() - deadline < 0) {
            try {
                TimeUnit.MILLISECONDS.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (connections.size() > 0) {
            LOG.warn("drain timeout: {} connection(s) still open, closing them", connections.size());
            connections.sessions().forEach(ProxySession::abortBoth);
        }
        // Give closing sockets their linger before the threads go away.
        final long lingerDeadline = System.nanoTime() + LINGER.toNanos();
        while (linger.lingering() > 0 && System.nanoTime() - lingerDeadline < 0) {
            try {
                TimeUnit.MILLISECONDS.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        stop();
    }

    /** Stops at once, without draining. */
    public void stop() {
        try {
            if (admin != null) {
                admin.stop();
            }
        } catch (Exception e) {
            LOG.debug("admin stop: {}", e.toString());
        }
        try {
            server.stop();
        } catch (Exception e) {
            LOG.debug("server stop: {}", e.toString());
        }
        if (policy != null) {
            policy.stop();
        }
        if (auditor != null) {
            auditor.log().close();
        }
        metrics.close();
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

    Metrics metrics() {
        return metrics;
    }

    Scheduler scheduler() {
        return scheduler;
    }

    /** What the admin port may do to the running proxy. */
    private final class Actions implements AdminActions {
        @Override
        public ReloadResult reload() {
            return ReloadResult.rejected(List.of("reload arrives with a later version of wsguard; restart to apply a new policy"));
        }

        @Override
        public Object effectivePolicy() {
            return loaded.policy();
        }

        @Override
        public List<ConnectionInfo> connections() {
            final Instant now = Instant.now();
            final List<ConnectionInfo> infos = new ArrayList<>();
            for (ProxySession s : connections.sessions()) {
                infos.add(new ConnectionInfo(s.id(), s.route(), s.clientIp(), null, s.openedAt(),
                        Duration.between(s.openedAt(), now).toSeconds(), s.messagesIn(), s.messagesOut(), s.bytesIn(), s.bytesOut()));
            }
            return infos;
        }

        @Override
        public int close(ConnectionFilter filter) {
            int closed = 0;
            for (ProxySession s : connections.sessions()) {
                if (filter.matches(null, s.clientIp(), s.route())) {
                    s.terminate(io.wsguard.check.CloseCodes.POLICY_VIOLATION, "closed by operator",
                            io.wsguard.check.CloseCodes.SHUTDOWN, "going away");
                    closed++;
                }
            }
            return closed;
        }
    }
}
