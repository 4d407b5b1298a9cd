package io.wsguard.admin;

import io.wsguard.metrics.Metrics;
import io.wsguard.policy.Loopback;
import io.wsguard.policy.Secret;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.BooleanSupplier;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import org.eclipse.jetty.util.HostPort;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin port's routes (SPEC §6). Runs on the admin server's own Jetty threads; every endpoint
 * answers from memory except {@code POST /admin/reload}, which blocks for as long as
 * {@link AdminActions#reload()} takes, and {@code GET /admin/cluster}, which completes its response
 * later from the thread that read Redis.
 *
 * <p>Order of decisions: the bearer token for {@code /admin/*} (so that an unauthenticated caller
 * learns nothing, not even which admin paths exist), then the cross-site check for {@code POST},
 * then 404, then 405.
 */
final class AdminHandler extends Handler.Abstract {

    private static final Logger LOG = LoggerFactory.getLogger(AdminHandler.class);

    private static final String JSON = "application/json";
    private static final String TEXT = "text/plain; charset=utf-8";
    private static final Set<String> CLOSE_PARAMETERS = Set.of("sub", "client", "route");

    /** One endpoint: its only method and what it does. */
    private record Endpoint(String method, Action action) {}

    @FunctionalInterface
    private interface Action {
        void run(Request request, Response response, Callback callback);
    }

    private final BooleanSupplier ready;
    private final AdminActions actions;
    private final byte[] tokenDigest; // null: /admin/* is open
    private final Dashboard dashboard;
    private final Map<String, Endpoint> endpoints;

    AdminHandler(Optional<Secret> token, Metrics metrics, BooleanSupplier ready, AdminActions actions) {
        this.ready = ready;
        this.actions = actions;
        this.tokenDigest = token.filter(secret -> !secret.isEmpty())
                .map(secret -> sha256(secret.value()))
                .orElse(null);
        this.dashboard = Dashboard.load();
        this.endpoints = Map.of(
                "/", new Endpoint("GET", this::dashboard),
                "/healthz", new Endpoint("GET", (req, res, cb) -> write(res, cb, 200, TEXT, "ok")),
                "/readyz", new Endpoint("GET", this::readiness),
                "/metrics",
                        new Endpoint(
                                "GET", (req, res, cb) -> write(res, cb, 200, Metrics.CONTENT_TYPE, metrics.scrape())),
                "/admin/reload", new Endpoint("POST", this::reload),
                "/admin/policy", new Endpoint("GET", (req, res, cb) -> json(res, cb, 200, actions.effectivePolicy())),
                "/admin/connections", new Endpoint("GET", (req, res, cb) -> json(res, cb, 200, actions.connections())),
                "/admin/audit/head", new Endpoint("GET", this::auditHead),
                "/admin/cluster", new Endpoint("GET", this::cluster),
                "/admin/connections/close", new Endpoint("POST", this::close));
    }

    /** Whether {@code /admin/*} asks for a bearer token. */
    boolean tokenRequired() {
        return tokenDigest != null;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        final String path = Request.getPathInContext(request);
        final String method = request.getMethod();
        // Nothing here may be cached by a browser or a proxy in between: it is live state.
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
        response.getHeaders().put("X-Content-Type-Options", "nosniff");

        if (tokenDigest == null && isAdminPath(path) && !addressedToLoopback(request)) {
            // Without a token, the port's only protection is being reachable from this host alone. A
            // page whose name was rebound to 127.0.0.1 (DNS rebinding) reaches it as "same origin",
            // but its requests still carry that name as Host.
            json(
                    response,
                    callback,
                    403,
                    new Problem("without admin.token, /admin/* answers only requests for a loopback "
                            + "host (Host: 127.0.0.1, [::1] or localhost)"));
            return true;
        }
        if (isAdminPath(path) && !authorized(request)) {
            response.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer realm=\"wsguard-admin\"");
            json(
                    response,
                    callback,
                    401,
                    new Problem("a bearer token is required (Authorization: Bearer <admin.token>)"));
            return true;
        }
        if ("POST".equals(method) && isCrossSite(request)) {
            // Without a token, a page on any site could POST to 127.0.0.1:9090 from the operator's
            // browser (a "simple" request needs no CORS preflight). Browsers send Origin on POST.
            json(response, callback, 403, new Problem("cross-site request refused"));
            return true;
        }
        final Endpoint endpoint = endpoints.get(path);
        if (endpoint == null) {
            json(response, callback, 404, new Problem("no such path: " + path));
            return true;
        }
        if (!endpoint.method().equals(method)) {
            response.getHeaders().put(HttpHeader.ALLOW, endpoint.method());
            json(response, callback, 405, new Problem(method + " not allowed (expected: " + endpoint.method() + ")"));
            return true;
        }
        try {
            endpoint.action().run(request, response, callback);
        } catch (RuntimeException e) {
            // The proxy's actions failed, not the request: log it here, tell the caller little.
            LOG.warn("admin {} {} failed", method, path, e);
            json(response, callback, 500, new Problem("internal error, see the wsguard log"));
        }
        return true;
    }

    private void readiness(Request request, Response response, Callback callback) {
        if (ready.getAsBoolean()) {
            write(response, callback, 200, TEXT, "ready");
        } else {
            write(response, callback, 503, TEXT, "draining");
        }
    }

    private void reload(Request request, Response response, Callback callback) {
        final ReloadResult result = actions.reload();
        if (result.applied()) {
            json(response, callback, 200, new Reloaded("reloaded"));
        } else {
            // 422: the request was fine, the policy file it pointed at was not.
            json(response, callback, 422, new Rejected("rejected", result.problems()));
        }
    }

    private void auditHead(Request request, Response response, Callback callback) {
        actions.auditHead()
                .ifPresentOrElse(
                        head -> json(response, callback, 200, head),
                        () -> json(
                                response,
                                callback,
                                404,
                                new Problem("no audit integrity chain yet (audit.integrityKey is"
                                        + " not set, or no numbered line has been written)")));
    }

    /**
     * Answers when the proxy's stage does, on its thread (Redis's): this admin thread returns at
     * once rather than wait for Redis.
     */
    private void cluster(Request request, Response response, Callback callback) {
        actions.cluster().whenComplete((view, failure) -> {
            if (failure == null) {
                json(response, callback, 200, view);
            } else {
                LOG.warn("admin GET /admin/cluster failed", failure);
                json(response, callback, 500, new Problem("internal error, see the wsguard log"));
            }
        });
    }

    private void close(Request request, Response response, Callback callback) {
        final ConnectionFilter filter;
        try {
            filter = filter(Request.extractQueryParameters(request, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            json(response, callback, 400, new Problem(e.getMessage()));
            return;
        }
        json(response, callback, 200, new Closed(actions.close(filter)));
    }

    /**
     * {@code sub}, {@code client} and {@code route}, each at most once and not empty. Anything else
     * is refused rather than ignored: a misspelt {@code clinet=} must not widen what gets closed.
     */
    static ConnectionFilter filter(Fields query) {
        for (String name : query.getNames()) {
            if (!CLOSE_PARAMETERS.contains(name)) {
                throw new IllegalArgumentException("unknown parameter '" + name + "' (expected: sub, client, route)");
            }
            final List<String> values = query.getValues(name);
            if (values.size() != 1 || values.get(0).isEmpty()) {
                throw new IllegalArgumentException(name + ": give it once, not empty");
            }
        }
        return new ConnectionFilter(
                Optional.ofNullable(query.getValue("sub")),
                Optional.ofNullable(query.getValue("client")),
                Optional.ofNullable(query.getValue("route")));
    }

    private void dashboard(Request request, Response response, Callback callback) {
        response.getHeaders().put("Content-Security-Policy", dashboard.contentSecurityPolicy());
        response.getHeaders().put("X-Frame-Options", "DENY");
        response.getHeaders().put("Referrer-Policy", "no-referrer");
        write(response, callback, 200, "text/html; charset=utf-8", dashboard.html());
    }

    private static boolean isAdminPath(String path) {
        return path.equals("/admin") || path.startsWith("/admin/");
    }

    private boolean authorized(Request request) {
        if (tokenDigest == null) {
            return true;
        }
        final String header = request.getHeaders().get(HttpHeader.AUTHORIZATION);
        // RFC 6750 §2.1; the scheme name is case-insensitive (RFC 9110 §11.1).
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return false;
        }
        // Digests of equal length, compared in constant time: neither the token's content nor its
        // length can be found by timing the answers.
        return MessageDigest.isEqual(tokenDigest, sha256(header.substring(7).strip()));
    }

    /** Whether the request's Host names this machine's loopback: an IP literal, or {@code localhost}. */
    static boolean addressedToLoopback(Request request) {
        final String host = request.getHeaders().get(HttpHeader.HOST);
        return host != null && Loopback.isLoopbackName(HostPort.normalizeHost(new HostPort(host).getHost()));
    }

    private static boolean isCrossSite(Request request) {
        final String fetchSite = request.getHeaders().get("Sec-Fetch-Site");
        if (fetchSite != null) {
            return !fetchSite.equals("same-origin") && !fetchSite.equals("none");
        }
        final String origin = request.getHeaders().get(HttpHeader.ORIGIN);
        if (origin == null) {
            return false; // curl, scripts, Prometheus: not a browser on another site
        }
        final String host = request.getHeaders().get(HttpHeader.HOST);
        try {
            final URI uri = URI.create(origin);
            final String authority = uri.getRawAuthority();
            return host == null
                    || authority == null
                    || !authority.toLowerCase(Locale.ROOT).equals(host.toLowerCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return true; // "null" origins and garbage: refuse
        }
    }

    private static byte[] sha256(String text) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }

    private static void json(Response response, Callback callback, int status, Object body) {
        write(response, callback, status, JSON, PolicyJson.write(body));
    }

    private static void write(Response response, Callback callback, int status, String contentType, String body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        Content.Sink.write(response, true, body, callback);
    }

    /** {@code {"error": "..."}}. */
    record Problem(String error) {}

    /** {@code {"status": "reloaded"}}. */
    record Reloaded(String status) {}

    /** {@code {"status": "rejected", "problems": [...]}}. */
    record Rejected(String status, List<String> problems) {}

    /** {@code {"closed": N}}. */
    record Closed(int closed) {}
}
