package io.wsguard.server;

import io.wsguard.admission.Admission;
import io.wsguard.auth.Principal;
import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.handshake.HandshakeRequest;
import io.wsguard.handshake.TokenSources;
import io.wsguard.metrics.RouteMetrics;
import io.wsguard.relay.InlineHandshaker;
import io.wsguard.relay.ProxySession;
import io.wsguard.relay.SelectorAffinity;
import io.wsguard.relay.UpstreamConnector;
import io.wsguard.relay.UpstreamRefusedException;
import io.wsguard.route.QueryNames;
import io.wsguard.route.RequestPaths;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.URIUtil;
import org.eclipse.jetty.websocket.core.Configuration;
import org.eclipse.jetty.websocket.core.ExtensionConfig;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.WebSocketComponents;
import org.eclipse.jetty.websocket.core.server.Handshaker;
import org.eclipse.jetty.websocket.core.server.ServerUpgradeRequest;
import org.eclipse.jetty.websocket.core.server.ServerUpgradeResponse;
import org.eclipse.jetty.websocket.core.server.WebSocketNegotiator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Jetty handler every client request meets. The order is fixed (README: check order): route (404),
 * upgrade (426), capacity and drain (503), the route's handshake checks, then the upstream: the
 * client's upgrade completes only after the upstream's has, with the subprotocol and extensions the
 * upstream chose (README, Policy file). Every refusal is a plain HTTP response and an audit line.
 *
 * <p>Nothing here blocks: checks and the upstream connect complete asynchronously, and the client's
 * upgrade is finished from the upstream connect's completion.
 */
final class UpgradeHandler extends Handler.Abstract.NonBlocking {

    private static final Logger LOG = LoggerFactory.getLogger(UpgradeHandler.class);
    private static final String DEFLATE = "permessage-deflate";
    /** Frames larger than this are relayed in pieces (RFC 6455 §5.4 lets intermediaries refragment). */
    private static final long MAX_FRAME_SIZE = 64 * 1024;
    /**
     * Read up to 32 KiB at a time instead of Jetty's 4 KiB: a 16 KiB message then arrives in one read
     * and is relayed as one frame, not four. Measured with the benchmark's scenario c (10 connections,
     * 16 KiB, 4 in flight): 2.0x the messages/s at half the CPU per message; 64-byte messages showed no
     * difference. Jetty returns the buffer to its pool whenever it is empty, so idle connections do
     * not hold it.
     */
    private static final int INPUT_BUFFER_SIZE = 32 * 1024;
    /**
     * Small frames read together are relayed in one write through a batch buffer of this size
     * (frames under a quarter of it; see {@code ProxySession.Side.relay}): 16 KiB is one TLS
     * record. Taken from the pool for a burst and given back after its write, never held idle.
     */
    private static final int OUTPUT_BUFFER_SIZE = 16 * 1024;
    /** {@code Retry-After} for a 429 or 503 whose check did not say when to retry. */
    private static final String DEFAULT_RETRY_AFTER = "5";
    /** The upstream side idles out after the client side, so that the client side decides. */
    private static final long UPSTREAM_IDLE_MARGIN_MS = 60_000;

    private final ProxyServer server;
    /**
     * The client side's reads run on the selector thread (see {@link InlineHandshaker}): measured in
     * three A/B pairs of the benchmark's scenarios a and b, 10–45% less proxy CPU per message on ws
     * and on 100 wss connections; one wss pair of a single busy connection came out 9% worse.
     */
    private final Handshaker handshaker = new InlineHandshaker();

    private final WebSocketComponents components;
    private final AtomicLong ids = new AtomicLong(System.nanoTime() & 0xffffff);

    /**
     * Test seam, null in production: run between reading the policy and taking it, so that a test can
     * reload right inside that window (ReloadRaceTest). A storm of reloads alone hits it too rarely.
     */
    static volatile Runnable beforeAcquire;

    UpgradeHandler(ProxyServer server, WebSocketComponents components) {
        this.server = server;
        this.components = components;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        final CompiledPolicy policy = server.policy();
        final String peer = Request.getRemoteAddr(request);
        final List<String> forwarded = request.getHeaders().getValuesList(HttpHeader.X_FORWARDED_FOR);
        final String clientIp =
                policy.trustedProxies().clientIp(peer, forwarded.isEmpty() ? null : String.join(",", forwarded));
        final String connectionId = Long.toHexString(ids.incrementAndGet());
        final HandshakeRequest handshake = new HandshakeRequest(request, clientIp, connectionId);

        if (!isUri(request)) {
            // Jetty accepts characters URIs do not (a query's '|', '^', a stray '%'); its WebSocket
            // upgrade does not, and would fail only after the upstream had been dialed.
            Response.writeError(request, response, callback, 400, "request target is not a valid URI");
            return true;
        }
        final String path = handshake.path();
        if (path == null) {
            refuse(
                    request,
                    response,
                    callback,
                    null,
                    handshake,
                    Reason.NO_ROUTE,
                    "path with a dot segment or path parameters matches no route");
            return true;
        }
        // The connector is named after its listener (ProxyServer): a route tied to other listeners is not in its table.
        final String listener = request.getConnectionMetaData().getConnector().getName();
        final CompiledRoute route = policy.routes(listener).match(handshake.host(), path);
        if (route == null) {
            refuse(
                    request,
                    response,
                    callback,
                    null,
                    handshake,
                    Reason.NO_ROUTE,
                    "no route for this host and path on listener '" + listener + "'");
            return true;
        }
        final String prefix = route.matcher().pathPrefix();
        if (prefix != null && RequestPaths.hasDotSegment(route.matcher().remainder(path))) {
            // /chat../admin under the prefix /chat: the remainder ../admin would climb out at the upstream.
            refuse(
                    request,
                    response,
                    callback,
                    null,
                    handshake,
                    Reason.NO_ROUTE,
                    "path with a dot segment or path parameters matches no route");
            return true;
        }
        if (!handshaker.isWebSocketUpgradeRequest(request)) {
            response.getHeaders().put(HttpHeader.UPGRADE, "websocket");
            refuse(
                    request,
                    response,
                    callback,
                    route,
                    handshake,
                    Reason.NOT_WEBSOCKET,
                    "not a WebSocket upgrade request");
            return true;
        }
        final String badUpgrade = upgradeProblem(request);
        if (badUpgrade != null) {
            // Before the upstream is dialed: Jetty checks these only when the client's upgrade completes.
            refuse(request, response, callback, route, handshake, Reason.INVALID_UPGRADE, badUpgrade);
            return true;
        }
        if (server.isDraining()) {
            refuse(request, response, callback, route, handshake, Reason.UNAVAILABLE, "draining");
            return true;
        }
        if (!server.connections().tryReserve(policy.maxConnections())) {
            refuse(
                    request,
                    response,
                    callback,
                    route,
                    handshake,
                    Reason.UNAVAILABLE,
                    "at proxy.maxConnections (" + policy.maxConnections() + ")");
            return true;
        }
        // From here everything the connection takes is held by its admission, and every way the
        // connection ends, in the handshake or after, gives it all back with one release().
        final Admission admission = handshake.admission();
        admission.hold(server.connections()::release);
        final Runnable seam = beforeAcquire;
        if (seam != null) {
            seam.run();
        }
        if (!policy.tryAcquire()) {
            // A reload retired the policy read above and its last connection closed since: its
            // upstream clients are stopped. Start over on the policy that replaced it.
            admission.release();
            return handle(request, response, callback);
        }
        admission.hold(policy::release);
        route.chain()
                .run(handshake, (deny, mode) -> denied(route, handshake, deny, mode))
                .whenComplete((result, failure) -> {
                    // A chain that failed outright (not a check: its audit callback) fails closed.
                    final Verdict verdict = failure != null
                            ? Verdict.deny(
                                    Reason.CHECK_FAILED,
                                    "handshake checks failed: "
                                            + failure.getClass().getSimpleName())
                            : result;
                    if (verdict instanceof Verdict.Deny deny) {
                        // Slots taken by checks before the one that denied (e.g. a later check's
                        // refusal after the connection caps) go back now.
                        admission.release();
                        respond(request, response, callback, route, handshake, deny);
                        return;
                    }
                    try {
                        connectUpstream(request, response, callback, policy, route, handshake, peer);
                    } catch (RuntimeException e) {
                        // Nothing may escape into the stage (it would be swallowed with the slots it holds).
                        LOG.warn("upgrade on route {} failed before the upstream dial: {}", route.name(), e.toString());
                        admission.release();
                        Response.writeError(request, response, callback, 500, "internal error");
                    }
                });
        return true;
    }

    private void connectUpstream(
            Request request,
            Response response,
            Callback callback,
            CompiledPolicy policy,
            CompiledRoute route,
            HandshakeRequest handshake,
            String peer) {
        final String origin = request.getHeaders().get(HttpHeader.ORIGIN);
        final Principal principal = handshake.principal().orElse(null);
        final ProxySession session = new ProxySession(
                route.session(),
                route.events(),
                server.scheduler(),
                server.threads(),
                handshake.connectionId(),
                handshake.clientIp(),
                origin,
                principal == null ? null : principal.subject(),
                principal == null ? null : principal.claimText("jti"),
                route.tokenDeadline(principal));
        final boolean offerDeflate = route.compressionAllowed()
                && request.getHeaders().getCSV(HttpHeader.SEC_WEBSOCKET_EXTENSIONS, false).stream()
                        .anyMatch(e -> ExtensionConfig.parse(e).getName().equals(DEFLATE));
        final String prefix = route.matcher().pathPrefix();
        // Matched decoded; sent encoded again, so that what the upstream decodes is what was matched.
        final String suffix =
                prefix == null ? "" : URIUtil.encodePath(route.matcher().remainder(handshake.path()));
        final Configuration.ConfigurationCustomizer upstreamConfig = new Configuration.ConfigurationCustomizer();
        upstreamConfig.setMaxFrameSize(MAX_FRAME_SIZE);
        upstreamConfig.setAutoFragment(true);
        upstreamConfig.setInputBufferSize(INPUT_BUFFER_SIZE);
        upstreamConfig.setOutputBufferSize(OUTPUT_BUFFER_SIZE);
        upstreamConfig.setIdleTimeout(route.idleTimeout().plusMillis(UPSTREAM_IDLE_MARGIN_MS));
        final TokenSources tokens = route.tokens();
        final UpstreamConnector.Request upstreamRequest = new UpstreamConnector.Request(
                suffix,
                withoutFixedParameters(
                        route,
                        handshake,
                        tokens == null ? handshake.query() : tokens.forwardedQuery(handshake.query())),
                route.headers()
                        .build(
                                request,
                                peer,
                                policy.trustedProxies().isTrusted(peer),
                                principal,
                                handshake.verifiedToken()),
                tokens == null ? handshake.subprotocols() : tokens.forwardedSubprotocols(handshake.subprotocols()),
                offerDeflate ? List.of(DEFLATE) : List.of(),
                upstreamConfig,
                selectorAffinity(request));
        final Admission admission = handshake.admission();
        // Both outcomes are answered in the callback (upgradeClient catches its own failures): the stage it
        // returns would only repeat them.
        final CompletableFuture<UpstreamConnector.Connected> unused = route.connector()
                .connect(upstreamRequest, session.upstreamHandler(), admission)
                .whenComplete((connected, failure) -> {
                    if (failure != null) {
                        admission.release();
                        final Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                                ? failure.getCause()
                                : failure;
                        final Reason reason = cause instanceof UpstreamRefusedException
                                ? Reason.UPSTREAM_REFUSED
                                : Reason.UPSTREAM_UNAVAILABLE;
                        refuse(request, response, callback, route, handshake, reason, cause.getMessage());
                        return;
                    }
                    server.metrics()
                            .route(route.name())
                            .upstreamConnected(connected.target().label(), connected.connectNanos());
                    session.dialled(connected.target());
                    // From here the session gives it all back when it closes; upgradeClient when the
                    // client's upgrade fails.
                    session.dialled(connected.target().uri());
                    session.hold(admission);
                    upgradeClient(
                            request,
                            response,
                            callback,
                            route,
                            session,
                            admission,
                            connected,
                            handshake.startedNanos());
                });
    }

    private void upgradeClient(
            Request request,
            Response response,
            Callback callback,
            CompiledRoute route,
            ProxySession session,
            Admission admission,
            UpstreamConnector.Connected connected,
            long started) {
        final String subprotocol = answeredSubprotocol(connected.session().getNegotiatedSubProtocol(), request, route);
        final boolean deflate = connected.session().getNegotiatedExtensions().stream()
                .anyMatch(e -> e.getName().equals(DEFLATE));
        final WebSocketNegotiator negotiator = new WebSocketNegotiator() {
            @Override
            public FrameHandler negotiate(
                    ServerUpgradeRequest upgradeRequest, ServerUpgradeResponse upgradeResponse, Callback negotiation) {
                if (subprotocol != null && !subprotocol.isEmpty()) {
                    upgradeResponse.setAcceptedSubProtocol(subprotocol);
                }
                // Only what the route allows and the upstream took; never fragment/identity (docs/policy.md).
                upgradeResponse.setExtensions(
                        deflate
                                ? upgradeRequest.getExtensions().stream()
                                        .filter(e -> e.getName().equals(DEFLATE))
                                        .limit(1)
                                        .toList()
                                : List.of());
                return session.clientHandler();
            }

            @Override
            public void customize(Configuration configuration) {
                configuration.setMaxFrameSize(MAX_FRAME_SIZE);
                configuration.setAutoFragment(true);
                configuration.setInputBufferSize(INPUT_BUFFER_SIZE);
                configuration.setOutputBufferSize(OUTPUT_BUFFER_SIZE);
                configuration.setIdleTimeout(route.idleTimeout());
            }
        };
        final Callback upgraded = Callback.from(
                () -> {
                    // The 101 is written: the handshake's duration ends here.
                    server.metrics().route(route.name()).handshakeTook(true, System.nanoTime() - started);
                    callback.succeeded();
                },
                failure -> {
                    // The client went away before its upgrade finished: the upstream must not be left open.
                    session.abortBoth();
                    admission.release();
                    callback.failed(failure);
                });
        try {
            if (!handshaker.upgradeRequest(negotiator, request, response, upgraded, components, null)) {
                session.abortBoth();
                admission.release();
                Response.writeError(request, response, callback, 400, "bad upgrade request");
            }
        } catch (Exception e) {
            if (LOG.isDebugEnabled()) {
                LOG.debug("client upgrade failed", e);
            }
            session.abortBoth();
            admission.release();
            Response.writeError(request, response, callback, 400, "bad upgrade request");
        }
    }

    /**
     * The client's raw query without the parameters that name one the route's targets fix
     * ({@code ws://up/ws?tenant=acme&role=guest} and a client's {@code role=admin}, in any spelling
     * {@link QueryNames} knows): appended after the target's, they would win in every framework where
     * the last value does. Dropped, counted and audited as {@code modified}; in monitor mode only
     * audited, and the query goes on as sent.
     */
    private String withoutFixedParameters(CompiledRoute route, HandshakeRequest handshake, String query) {
        final Set<String> fixed = route.connector().fixedQueryNames();
        if (query == null || fixed.isEmpty()) {
            return query;
        }
        final StringBuilder kept = new StringBuilder(query.length());
        int dropped = 0;
        for (String pair : query.split("&", -1)) {
            if (QueryNames.names(pair, fixed)) {
                dropped++;
                continue;
            }
            if (kept.length() > 0) {
                kept.append('&');
            }
            kept.append(pair);
        }
        if (dropped == 0) {
            return query;
        }
        final String detail = "dropped " + dropped + " client query parameter" + (dropped == 1 ? "" : "s")
                + " naming one the target fixes";
        if (route.mode() == Mode.MONITOR) {
            server.metrics().route(route.name()).blocked(Reason.QUERY_OVERRIDE, 1);
            server.auditor().handshakeModified(route.name(), handshake, Reason.QUERY_OVERRIDE, Mode.MONITOR, detail);
            return query;
        }
        server.metrics().route(route.name()).modified(Reason.QUERY_OVERRIDE);
        server.auditor().handshakeModified(route.name(), handshake, Reason.QUERY_OVERRIDE, Mode.ENFORCE, detail);
        return kept.length() == 0 ? null : kept.toString();
    }

    /** The selector watching the client's socket (below TLS), when it can watch the upstream socket too. */
    private static SelectorAffinity selectorAffinity(Request request) {
        EndPoint endPoint = request.getConnectionMetaData().getConnection().getEndPoint();
        while (endPoint instanceof EndPoint.Wrapper wrapper) {
            endPoint = wrapper.unwrap();
        }
        return endPoint instanceof SelectorAffinity affinity ? affinity : null;
    }

    /**
     * The subprotocol the client gets: the upstream's choice; or, when the upstream chose none and
     * the client offered nothing but token entries, one of those (README, Policy file). A browser that offered
     * subprotocols fails a handshake whose answer names none, and the token is all it offered.
     */
    private static String answeredSubprotocol(String upstreamChoice, Request request, CompiledRoute route) {
        if (upstreamChoice != null && !upstreamChoice.isEmpty()) {
            return upstreamChoice;
        }
        if (route.tokens() == null || !route.tokens().usesSubprotocol()) {
            return null;
        }
        final List<String> offered = request.getHeaders().getCSV(HttpHeader.SEC_WEBSOCKET_SUBPROTOCOL, true);
        if (offered.isEmpty() || !offered.stream().allMatch(TokenSources::isTokenSubprotocol)) {
            return null;
        }
        return offered.get(0);
    }

    private void refuse(
            Request request,
            Response response,
            Callback callback,
            CompiledRoute route,
            HandshakeRequest handshake,
            Reason reason,
            String detail) {
        final Verdict.Deny deny = new Verdict.Deny(reason, detail);
        denied(route, handshake, deny, Mode.ENFORCE);
        respond(request, response, callback, route, handshake, deny);
    }

    /** Every deny, enforced or monitored: one audit line and one {@code wsguard_blocked_total} count. */
    private void denied(CompiledRoute route, HandshakeRequest handshake, Verdict.Deny deny, Mode mode) {
        final String name = route == null ? null : route.name();
        server.metrics().route(name).blocked(deny.reason(), 1);
        server.auditor().handshake(name, handshake, deny, mode);
    }

    /**
     * What makes an upgrade request one RFC 6455 §4.2.1 says to answer with 400, or null: an
     * {@code Upgrade} without {@code websocket}, or a {@code Sec-WebSocket-Key} that is missing,
     * repeated (§11.3.1: it must not appear more than once) or not 16 bytes in base64. Jetty's
     * handshaker takes any key value, and would answer 101. ({@code Upgrade} without
     * {@code Connection: upgrade} never gets here: Jetty answers 400 itself.)
     */
    static String upgradeProblem(Request request) {
        final HttpFields headers = request.getHeaders();
        if (!headers.contains(HttpHeader.UPGRADE, "websocket")) {
            return "Upgrade does not name websocket";
        }
        final List<String> keys = headers.getValuesList(HttpHeader.SEC_WEBSOCKET_KEY);
        if (keys.size() != 1) {
            return keys.isEmpty() ? "no Sec-WebSocket-Key" : "more than one Sec-WebSocket-Key";
        }
        // 16 bytes are 24 base64 characters, the last two '=': the decoder alone would also take the
        // key without its padding. The parser has trimmed the value; whitespace inside it is refused.
        final String key = keys.get(0);
        if (key.length() == 24 && key.endsWith("==")) {
            try {
                if (Base64.getDecoder().decode(key).length == 16) {
                    return null;
                }
            } catch (IllegalArgumentException notBase64) {
                // refused below
            }
        }
        return "Sec-WebSocket-Key is not 16 bytes in base64";
    }

    private static boolean isUri(Request request) {
        try {
            request.getHttpURI().toURI();
            return true;
        } catch (IllegalArgumentException notUri) {
            return false;
        }
    }

    private void respond(
            Request request,
            Response response,
            Callback callback,
            CompiledRoute route,
            HandshakeRequest handshake,
            Verdict.Deny deny) {
        final Reason reason = deny.reason();
        final RouteMetrics metrics = server.metrics().route(route == null ? null : route.name());
        metrics.handshakeRefused(reason);
        metrics.handshakeTook(false, System.nanoTime() - handshake.startedNanos());
        final int status = reason.httpStatus() > 0 ? reason.httpStatus() : 403;
        if (status == 429 || status == 503) {
            // A rate refusal knows when the next token is due; otherwise a modest default.
            response.getHeaders()
                    .put(
                            HttpHeader.RETRY_AFTER,
                            deny.retryAfterSeconds() > 0
                                    ? Long.toString(deny.retryAfterSeconds())
                                    : DEFAULT_RETRY_AFTER);
        }
        if (status == 401) {
            // RFC 6750 §3.1: no error code when the request carried no credentials at all, so a
            // client can tell "send a token" from "your token is bad" without parsing the body.
            response.getHeaders()
                    .put(
                            HttpHeader.WWW_AUTHENTICATE,
                            reason == Reason.TOKEN_MISSING ? "Bearer" : "Bearer error=\"invalid_token\"");
        }
        Response.writeError(request, response, callback, status, statusText(reason));
    }

    private static String statusText(Reason reason) {
        return switch (reason) {
            case NO_ROUTE -> "no route";
            case NOT_WEBSOCKET -> "WebSocket upgrade required";
            case UNAVAILABLE, CHECK_FAILED -> "service unavailable";
            case UPSTREAM_REFUSED, UPSTREAM_UNAVAILABLE -> "bad gateway";
            default -> "refused: " + reason.code();
        };
    }
}
