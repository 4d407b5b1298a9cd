package io.wsguard.admin;

import static java.util.Objects.requireNonNull;

import io.wsguard.metrics.Metrics;
import io.wsguard.policy.AdminPolicy;
import java.util.function.BooleanSupplier;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin port (SPEC §6): its own Jetty server and thread pool on {@code admin.host:admin.port},
 * so that a flood of WebSocket traffic cannot starve health checks and scrapes, and the reverse.
 *
 * <table>
 * <caption>Endpoints</caption>
 * <tr><td>{@code GET /healthz}</td><td>200 {@code ok wsguard 0.1.0 (commit f6b88b2)} (this build's
 *     {@link io.wsguard.Version}) while the process is up</td></tr>
 * <tr><td>{@code GET /readyz}</td><td>200 {@code ready} (or {@code ready, degraded: …} naming what this
 * instance runs without, e.g. its shared store), or 503 {@code draining} while {@code ready} says false</td></tr>
 * <tr><td>{@code GET /metrics}</td><td>Prometheus text format 0.0.4</td></tr>
 * <tr><td>{@code POST /admin/reload}</td><td>200 {@code {"status":"reloaded"}}, or 422 with {@code problems}</td></tr>
 * <tr><td>{@code GET /admin/policy}</td><td>the effective policy as JSON, secrets as {@code "<redacted>"}</td></tr>
 * <tr><td>{@code GET /admin/connections}</td><td>JSON array of {@link ConnectionInfo}</td></tr>
 * <tr><td>{@code POST /admin/connections/close?sub=S&jti=J&client=IP&route=R}</td><td>at least one filter,
 *     else 400; 200 {@code {"closed":N,"scope":...,"subscribers":...,"note":...}}: closed here, and sent to
 *     every instance through Redis when there is one</td></tr>
 * <tr><td>{@code POST /admin/revoke?sub=S&ttl=15m} or {@code ?jti=J&ttl=15m}</td><td>closes and refuses the
 *     subject or token on every instance until the TTL ends (1s to 30d); 400 on bad input</td></tr>
 * <tr><td>{@code GET /admin/revocations}</td><td>the revocations in force</td></tr>
 * <tr><td>{@code GET /admin/cluster}</td><td>the live instances sharing this one's Redis, with
 *     {@code warnings} when their routes differ</td></tr>
 * <tr><td>{@code GET /}</td><td>the dashboard page</td></tr>
 * </table>
 * Any other path is 404 and a wrong method 405, both with a JSON {@code {"error": ...}} body.
 *
 * <p><b>The probes port.</b> With {@code admin.probes}, a second port serves {@code /healthz},
 * {@code /readyz} and {@code /metrics} and answers 404 to everything else, {@code /admin/*} and the
 * dashboard included, whatever the token. It is the port a kubelet and Prometheus reach on the pod's
 * address, while the admin port stays on loopback.
 *
 * <p><b>Access.</b> When {@code admin.token} is set and not empty, every {@code /admin/*} request
 * needs {@code Authorization: Bearer <token>} (compared in constant time), else 401 with
 * {@code WWW-Authenticate: Bearer}. {@code /healthz}, {@code /readyz}, {@code /metrics} and the
 * dashboard page itself stay open: probes and Prometheus scrape them without credentials, and they
 * reveal counts, not identities, subjects or policy. The admin port is meant for a private network
 * or loopback ({@code admin.host} defaults to {@code 127.0.0.1}); it serves plain HTTP, so put TLS in
 * front of it before exposing it further. {@code POST}s from another site's page are refused (403)
 * so a browser cannot be used to reload or close connections behind the operator's back.
 *
 * <p><b>Threads.</b> Requests run on this server's small pool ({@code wsguard-admin-*}). Every
 * endpoint answers from memory, except {@code POST /admin/reload}, which blocks its thread while the
 * policy file is read and compiled; close and revoke, which answer once Redis has (their handler
 * returns at once; no thread waits for Redis); and {@code GET /admin/cluster}, whose answer is written
 * from Redis's thread when the read completes.
 */
public final class AdminServer {

    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);

    private final Server server;
    private final ServerConnector connector;
    /** {@code admin.probes}: the second port, serving only health, readiness and metrics; else null. */
    private final ServerConnector probes;

    private final AdminHandler handler;

    /**
     * An admin server, not yet started.
     *
     * @param policy where to listen, and the token {@code /admin/*} requires, if any
     * @param metrics what {@code GET /metrics} serves
     * @param ready false while draining; read on every {@code GET /readyz}, so it must be cheap
     * @param actions the running proxy's side of reload, policy and connections
     */
    public AdminServer(AdminPolicy policy, Metrics metrics, BooleanSupplier ready, AdminActions actions) {
        requireNonNull(policy, "policy");
        final QueuedThreadPool threads = new QueuedThreadPool(16, 2);
        threads.setName("wsguard-admin");
        server = new Server(threads);
        final HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setSendXPoweredBy(false);
        connector = new ServerConnector(server, 1, 1, new HttpConnectionFactory(http));
        connector.setHost(policy.host());
        connector.setPort(policy.port());
        connector.setIdleTimeout(30_000);
        server.addConnector(connector);
        probes = policy.probes()
                .map(where -> {
                    // Same server and threads: a probe and an operator's request cost the same, and
                    // the handler tells the two ports apart by the connector's name.
                    final ServerConnector probesConnector =
                            new ServerConnector(server, 1, 1, new HttpConnectionFactory(http));
                    probesConnector.setName(AdminHandler.PROBES_CONNECTOR);
                    probesConnector.setHost(where.host());
                    probesConnector.setPort(where.port());
                    probesConnector.setIdleTimeout(30_000);
                    server.addConnector(probesConnector);
                    return probesConnector;
                })
                .orElse(null);
        handler = new AdminHandler(
                policy.token(), requireNonNull(metrics, "metrics"),
                requireNonNull(ready, "ready"), requireNonNull(actions, "actions"));
        server.setHandler(handler);
    }

    /** Binds the port and starts serving. */
    public void start() throws Exception {
        server.start();
        LOG.info(
                "admin listening on http://{}:{}/{}",
                connector.getHost(),
                port(),
                handler.tokenRequired() ? " (/admin/* needs the bearer token)" : " (/admin/* open: no admin.token)");
        if (probes != null) {
            LOG.info(
                    "probes listening on http://{}:{}/ (/healthz, /readyz and /metrics only)",
                    probes.getHost(),
                    probesPort());
        }
    }

    /** Stops serving and releases the port; requests in progress are given Jetty's stop timeout. */
    public void stop() throws Exception {
        server.stop();
    }

    /** The bound port once started (useful with port 0), else the configured one. */
    public int port() {
        final int local = connector.getLocalPort();
        return local > 0 ? local : connector.getPort();
    }

    /** The probes port once started, else the configured one; -1 without {@code admin.probes}. */
    public int probesPort() {
        if (probes == null) {
            return -1;
        }
        final int local = probes.getLocalPort();
        return local > 0 ? local : probes.getPort();
    }
}
