package io.wsguard.server;

import io.wsguard.auth.Principal;
import io.wsguard.check.Mode;
import io.wsguard.handshake.HandshakeChain;
import io.wsguard.handshake.TokenSources;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.RoutePolicy;
import io.wsguard.relay.MessageRules;
import io.wsguard.relay.SessionSettings;
import io.wsguard.relay.UpstreamConnector;
import io.wsguard.route.RouteMatcher;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Executor;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * A route ready to serve: its matcher, handshake checks, session settings and upstream headers, all
 * compiled once from its {@link RoutePolicy}, and, once {@linkplain #start started}, its upstream
 * connector and session events. A connection keeps the compiled route it started with, also across
 * a reload.
 *
 * <p>Compiling starts no thread and makes no upstream client or scheduler, so that {@code wsguard check}
 * compiles a policy as {@code run} does and needs no thread pool; the upstream client is made and
 * started by {@link #start}, on the server's threads and scheduler. The fields it sets are written before the policy is
 * published
 * to request threads (a volatile write in the server) and never again.
 */
final class CompiledRoute {

    private final RoutePolicy policy;
    private final RouteMatcher matcher;
    private final HandshakeChain chain;
    private final SslContextFactory.Client upstreamTls;
    private final UpstreamHeaders headers;
    private final TokenSources tokens;
    private final SessionSettings session;
    private UpstreamConnector connector;
    private ServerEvents events;

    /**
     * @param upstreamTls the trust for a {@code wss://} upstream, or null
     * @param tokens where the route reads its token, or null for {@code auth: none}
     */
    CompiledRoute(
            RoutePolicy policy,
            RouteMatcher matcher,
            HandshakeChain chain,
            SslContextFactory.Client upstreamTls,
            UpstreamHeaders headers,
            TokenSources tokens,
            SessionSettings session) {
        this.policy = policy;
        this.matcher = matcher;
        this.chain = chain;
        this.upstreamTls = upstreamTls;
        this.headers = headers;
        this.tokens = tokens;
        this.session = session;
    }

    /** Makes and starts the upstream client on the server's threads, and takes the route's session events. */
    void start(Executor executor, Scheduler scheduler, ServerEvents events) throws Exception {
        this.events = events;
        this.connector = new UpstreamConnector(policy.upstream(), upstreamTls, executor, scheduler);
        connector.start();
    }

    /** Stops the upstream client, if {@link #start} made one. */
    void stop() throws Exception {
        if (connector != null) {
            connector.stop();
        }
    }

    RoutePolicy policy() {
        return policy;
    }

    RouteMatcher matcher() {
        return matcher;
    }

    HandshakeChain chain() {
        return chain;
    }

    /** The upstream client; null until {@link #start}. */
    UpstreamConnector connector() {
        return connector;
    }

    UpstreamHeaders headers() {
        return headers;
    }

    /** Where the route reads its token, or null for {@code auth: none}. */
    TokenSources tokens() {
        return tokens;
    }

    SessionSettings session() {
        return session;
    }

    /** What the route's sessions report to; null until {@link #start}. */
    ServerEvents events() {
        return events;
    }

    String name() {
        return policy.name();
    }

    Mode mode() {
        return policy.mode();
    }

    /** What the client's messages must satisfy. */
    MessageRules inboundRules() {
        return session.inboundRules();
    }

    /**
     * What the upstream's messages must satisfy: the client's rules with {@code direction: both}, else only a size
     * limit.
     */
    MessageRules outboundRules() {
        return session.outboundRules();
    }

    boolean compressionAllowed() {
        return policy.messages().compressionAllowed();
    }

    Duration idleTimeout() {
        return session.idleTimeout();
    }

    /**
     * When a connection opened with {@code principal}'s token is closed for its expiry, or null. The
     * handshake accepted the token up to {@code exp + clockSkew}, so the connection lives as long:
     * closing at {@code exp} could close a connection the moment it opened.
     */
    Instant tokenDeadline(Principal principal) {
        final AuthPolicy.JwtPolicy jwt = policy.auth().jwt().orElse(null);
        if (principal == null || jwt == null || jwt.onExpiry() != AuthPolicy.OnExpiry.CLOSE) {
            return null;
        }
        return principal.expiresAt().map(exp -> exp.plus(jwt.clockSkew())).orElse(null);
    }
}
