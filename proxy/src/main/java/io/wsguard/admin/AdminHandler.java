package io.wsguard.admin;

import io.wsguard.Version;
import io.wsguard.cluster.Revocations;
import io.wsguard.metrics.Metrics;
import io.wsguard.policy.Loopback;
import io.wsguard.policy.Secret;
import io.wsguard.policy.Units;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;
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
 * {@link AdminActions#reload()} takes; {@code POST /admin/connections/close} and
 * {@code /admin/revoke}, which complete their response from Redis's answer, later, without a thread
 * waiting for it; and {@code GET /admin/cluster}, which completes its response later from the thread
 * that read Redis.
 *
 * <p>Order of decisions: on the probes port ({@code admin.probes}), 404 for anything but
 * {@code /healthz}, {@code /readyz} and {@code /metrics}; then the bearer token for {@code /admin/*} (so that
 * an unauthenticated caller learns nothing, not even which admin paths exist), then the cross-site
 * check for {@code POST}, then 404, then 405.
 */
final class AdminHandler extends Handler.Abstract {

    private static final Logger LOG = LoggerFactory.getLogger(AdminHandler.class);

    /** The name of the {@code admin.probes} connector, by which a request is known to have come through it. */
    static final String PROBES_CONNECTOR = "wsguard-probes";
    /** What the probes port serves; anything else there is 404. */
    private static final Set<String> PROBE_PATHS = Set.of("/healthz", "/readyz", "/metrics");

    private static final String JSON = "application/json";
    private static final String TEXT = "text/plain; charset=utf-8";
    /** {@code /healthz}'s body: {@code ok} first, for probes that match it, then which build answers. */
    static final String HEALTHY = "ok " + Version.describe();

    private static final Set<String> CLOSE_PARAMETERS = Set.of("sub", "jti", "client", "route");
    private static final Set<String> REVOKE_PARAMETERS = Set.of("sub", "jti", "ttl");
    /** The longest subject or token id a revocation takes (a JWT claim is rarely past a few hundred). */
    private static final int MAX_REVOKED_LENGTH = 1024;

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
        final Map<String, Endpoint> endpoints = new HashMap<>(Map.of(
                "/", new Endpoint("GET", this::dashboard),
                "/healthz", new Endpoint("GET", (req, res, cb) -> write(res, cb, 200, TEXT, HEALTHY)),
                "/readyz", new Endpoint("GET", this::readiness),
                "/metrics",
                        new Endpoint(
                                "GET", (req, res, cb) -> write(res, cb, 200, Metrics.CONTENT_TYPE, metrics.scrape())),
                "/admin/reload", new Endpoint("POST", this::reload),
                "/admin/policy", new Endpoint("GET", (req, res, cb) -> json(res, cb, 200, actions.effectivePolicy())),
                "/admin/connections", new Endpoint("GET", (req, res, cb) -> json(res, cb, 200, actions.connections())),
                "/admin/audit/head", new Endpoint("GET", this::auditHead),
                "/admin/connections/close", new Endpoint("POST", this::close)));
        endpoints.put("/admin/cluster", new Endpoint("GET", this::cluster));
        endpoints.put("/admin/revoke", new Endpoint("POST", this::revoke));
        endpoints.put("/admin/revocations", new Endpoint("GET", this::revocations));
        this.endpoints = Map.copyOf(endpoints);
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

        if (!PROBE_PATHS.contains(path) && throughProbesPort(request)) {
            // First of all: the probes port is on the pod network, and whatever else the admin port
            // serves, with or without a token, is not for it. 404 whatever the path, so it does not
            // tell which admin paths exist.
            json(
                    response,
                    callback,
                    404,
                    new Problem("no such path: " + path + " (this port serves /healthz, /readyz and /metrics only)"));
            return true;
        }
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
            // Degraded is still ready: taking every instance out of the balancer because their
            // shared Redis is down would turn a store outage into a full one.
            write(
                    response,
                    callback,
                    200,
                    TEXT,
                    actions.degraded().map(what -> "ready, degraded: " + what).orElse("ready"));
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
        answerLater(request, response, callback, actions.closeEverywhere(filter), broadcast -> broadcast);
    }

    /**
     * {@code sub}, {@code jti}, {@code client} and {@code route}, each at most once and not empty.
     * Anything else is refused rather than ignored: a misspelt {@code clinet=} must not widen what
     * gets closed.
     */
    static ConnectionFilter filter(Fields query) {
        checkParameters(query, CLOSE_PARAMETERS, "sub, client, route, jti");
        return new ConnectionFilter(
                Optional.ofNullable(query.getValue("sub")),
                Optional.ofNullable(query.getValue("jti")),
                Optional.ofNullable(query.getValue("client")),
                Optional.ofNullable(query.getValue("route")));
    }

    private static void checkParameters(Fields query, Set<String> known, String expected) {
        for (String name : query.getNames()) {
            if (!known.contains(name)) {
                throw new IllegalArgumentException("unknown parameter '" + name + "' (expected: " + expected + ")");
            }
            final List<String> values = query.getValues(name);
            if (values.size() != 1 || values.get(0).isEmpty()) {
                throw new IllegalArgumentException(name + ": give it once, not empty");
            }
        }
    }

    private void revoke(Request request, Response response, Callback callback) {
        final RevokeRequest revoke;
        try {
            revoke = revokeRequest(Request.extractQueryParameters(request, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            json(response, callback, 400, new Problem(e.getMessage()));
            return;
        }
        answerLater(
                request,
                response,
                callback,
                actions.revoke(revoke.kind(), revoke.value(), revoke.ttl()),
                outcome -> Revoked.of(outcome));
    }

    /** What {@code POST /admin/revoke} asks: one of {@code sub} and {@code jti}, and for how long. */
    record RevokeRequest(Revocations.Kind kind, String value, Duration ttl) {}

    /**
     * {@code sub=S&ttl=15m} or {@code jti=J&ttl=15m}: exactly one of sub and jti, a TTL from 1s to
     * 30d in the policy file's units; anything else is refused with what was expected.
     */
    static RevokeRequest revokeRequest(Fields query) {
        checkParameters(query, REVOKE_PARAMETERS, "sub or jti, and ttl");
        final String sub = query.getValue("sub");
        final String jti = query.getValue("jti");
        if ((sub == null) == (jti == null)) {
            throw new IllegalArgumentException(
                    "give exactly one of sub and jti (expected: sub=S&ttl=15m or jti=J&ttl=15m)");
        }
        final String value = sub != null ? sub : jti;
        if (value.length() > MAX_REVOKED_LENGTH) {
            throw new IllegalArgumentException(
                    (sub != null ? "sub" : "jti") + ": longer than " + MAX_REVOKED_LENGTH + " characters");
        }
        final String ttlText = query.getValue("ttl");
        if (ttlText == null) {
            throw new IllegalArgumentException(
                    "ttl: missing (expected: how long the revocation lasts, like 15m, 12h or 7d)");
        }
        final Duration ttl;
        try {
            ttl = Units.duration(ttlText);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("ttl: " + e.getMessage(), e);
        }
        if (ttl.compareTo(Revocations.MIN_TTL) < 0 || ttl.compareTo(Revocations.MAX_TTL) > 0) {
            throw new IllegalArgumentException("ttl: '" + ttlText + "' is out of range (expected: from 1s to 30d)");
        }
        return new RevokeRequest(sub != null ? Revocations.Kind.SUB : Revocations.Kind.JTI, value, ttl);
    }

    private void revocations(Request request, Response response, Callback callback) {
        final String localOnly = actions.localOnly();
        final Instant now = Instant.now();
        final List<Listed> listed = actions.revocations().stream()
                .map(r -> new Listed(
                        r.kind().field(),
                        r.value(),
                        r.until(),
                        Math.max(0, Duration.between(now, r.until()).toSeconds()),
                        r.by()))
                .toList();
        json(
                response,
                callback,
                200,
                new Listing(
                        localOnly == null ? Broadcast.CLUSTER : Broadcast.THIS_INSTANCE_ONLY,
                        localOnly == null
                                ? "every instance's revocations, as of this instance's last heartbeat"
                                : localOnly,
                        listed));
    }

    /**
     * Writes {@code answer}'s result as JSON once it completes, on the admin server's threads: the
     * handler has returned long before, and no admin thread waits for Redis meanwhile.
     */
    private <T> void answerLater(
            Request request,
            Response response,
            Callback callback,
            CompletionStage<T> answer,
            java.util.function.Function<T, Object> body) {
        answer.whenCompleteAsync(
                (result, failure) -> {
                    if (failure != null) {
                        LOG.warn("admin {} {} failed", request.getMethod(), Request.getPathInContext(request), failure);
                        json(response, callback, 500, new Problem("internal error, see the wsguard log"));
                        return;
                    }
                    json(response, callback, 200, body.apply(result));
                },
                request.getComponents().getExecutor());
    }

    private void dashboard(Request request, Response response, Callback callback) {
        response.getHeaders().put("Content-Security-Policy", dashboard.contentSecurityPolicy());
        response.getHeaders().put("X-Frame-Options", "DENY");
        response.getHeaders().put("Referrer-Policy", "no-referrer");
        write(response, callback, 200, "text/html; charset=utf-8", dashboard.html());
    }

    private static boolean throughProbesPort(Request request) {
        return PROBES_CONNECTOR.equals(
                request.getConnectionMetaData().getConnector().getName());
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

    /**
     * {@code POST /admin/revoke}'s answer: the revocation in force (an earlier, longer one of the same
     * id stays as it was), how many connections closed here, and how far the request reached.
     */
    record Revoked(
            String kind,
            String value,
            Instant until,
            long ttlSeconds,
            int closed,
            String scope,
            Long subscribers,
            String note) {

        static Revoked of(Revocations.Outcome outcome) {
            final Revocations.InForce revocation = outcome.revocation();
            final boolean everywhere = outcome.localOnly() == null;
            return new Revoked(
                    revocation.kind().field(),
                    revocation.value(),
                    revocation.until(),
                    Math.round(revocation.remainingMillis() / 1000.0),
                    outcome.closed(),
                    everywhere ? Broadcast.CLUSTER : Broadcast.THIS_INSTANCE_ONLY,
                    outcome.subscribers(),
                    everywhere
                            ? "sent to " + outcome.subscribers() + " subscriber(s) (this instance included): every"
                                    + " instance closes its matching connections and refuses new handshakes"
                            : outcome.localOnly());
        }
    }

    /** {@code GET /admin/revocations}: how far the list reaches, and the revocations in force. */
    record Listing(String scope, String note, List<Listed> revocations) {}

    /** One revocation in force: what, until when, seconds left, and the instance that was asked. */
    record Listed(String kind, String value, Instant until, long remainingSeconds, String by) {}
}
