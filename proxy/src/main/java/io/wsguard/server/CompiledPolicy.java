package io.wsguard.server;

import io.wsguard.handshake.ClientCertificateCheck;
import io.wsguard.handshake.ConnectionLimitCheck;
import io.wsguard.handshake.HandshakeChain;
import io.wsguard.handshake.HandshakeCheck;
import io.wsguard.handshake.HandshakeRateCheck;
import io.wsguard.handshake.JwtCheck;
import io.wsguard.handshake.OriginAllowListCheck;
import io.wsguard.handshake.SameOriginCheck;
import io.wsguard.handshake.TokenSources;
import io.wsguard.limit.LimitState;
import io.wsguard.limit.RedisBuckets;
import io.wsguard.message.ContentRules;
import io.wsguard.message.ContentRulesException;
import io.wsguard.policy.LimitsPolicy;
import io.wsguard.auth.JwtConfigException;
import io.wsguard.auth.JwtVerifier;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.ListenerPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.MatchPolicy;
import io.wsguard.policy.Policy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyProblem;
import io.wsguard.policy.ProxyPolicy;
import io.wsguard.policy.RoutePolicy;
import io.wsguard.relay.MessageRules;
import io.wsguard.relay.UpstreamConnector;
import io.wsguard.route.RequestPaths;
import io.wsguard.route.RouteMatcher;
import io.wsguard.route.RouteTable;
import io.wsguard.tls.ServerTls;
import io.wsguard.tls.TlsConfigException;
import io.wsguard.tls.UpstreamTls;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * A policy compiled for serving: route table, trusted proxies, one upstream connector per route and
 * the listeners' TLS contexts. Built once, shared by every request, never changed; anything that can
 * fail (keys, certificates, trust stores) fails here, with the location of the field at fault.
 */
final class CompiledPolicy {

    /** {@link #inUse} of a stopped policy: far enough below 0 that late releases never bring it back to 0. */
    private static final int STOPPED = Integer.MIN_VALUE / 2;

    private final Policy policy;
    /** One route table per listener, by the listener's name: a route tied to other listeners is not in it. */
    private final Map<String, RouteTable<CompiledRoute>> routes;
    private final List<CompiledRoute> routeList;
    private final TrustedProxies trustedProxies;
    private final List<SslContextFactory.Server> listenerTls;
    /**
     * Handshakes in progress and connections open that use this policy's routes; {@link #STOPPED}
     * (or below, after releases that came too late) once it stopped. One number, so that taking a
     * use and stopping at no use exclude each other.
     */
    private final AtomicInteger inUse = new AtomicInteger();
    /** What the checks hold that must be let go of when the policy stops (JWKS refresh schedules). */
    private final List<AutoCloseable> resources;
    private volatile boolean retired;
    private final AtomicBoolean stopped = new AtomicBoolean();

    private CompiledPolicy(
            Policy policy, List<CompiledRoute> routes, TrustedProxies trustedProxies, List<SslContextFactory.Server> listenerTls,
            List<AutoCloseable> resources) {
        this.policy = policy;
        this.resources = List.copyOf(resources);
        this.routeList = List.copyOf(routes);
        final Map<String, RouteTable<CompiledRoute>> tables = new HashMap<>();
        for (ListenerPolicy listener : policy.listeners()) {
            tables.put(listener.name(), RouteTable.of(
                    routeList.stream().filter(r -> r.policy().match().servedOn(listener.name())).toList(), CompiledRoute::matcher));
        }
        this.routes = Map.copyOf(tables);
        this.trustedProxies = trustedProxies;
        this.listenerTls = listenerTls;
    }

    /**
     * Compiles {@code loaded}; {@code events} makes each route's session events, {@code limits} holds
     * the counters and buckets that outlive this policy (the running proxy's, so that a reload keeps
     * counting), {@code sharedBuckets} the Redis store of {@code rateLimitStore.type: redis} (null:
     * local buckets only). Throws {@link PolicyException} with every located problem.
     */
    static CompiledPolicy from(
            LoadedPolicy loaded, Executor executor, Scheduler scheduler, Function<String, ServerEvents> events,
            LimitState limits, Executor jwksExecutor, RedisBuckets sharedBuckets) {
        final Policy policy = loaded.policy();
        final List<AutoCloseable> resources = new ArrayList<>();
        final List<PolicyProblem> problems = new ArrayList<>();
        final List<SslContextFactory.Server> listenerTls = new ArrayList<>();
        for (int i = 0; i < policy.listeners().size(); i++) {
            final ListenerPolicy listener = policy.listeners().get(i);
            if (listener.tls().isEmpty()) {
                listenerTls.add(null);
                continue;
            }
            try {
                listenerTls.add(ServerTls.create(listener.tls().get()));
            } catch (TlsConfigException e) {
                problems.add(tlsProblem(loaded, "listeners[" + i + "].tls.", e));
                listenerTls.add(null);
            }
        }
        problems.addAll(caseTwins(loaded));
        final List<CompiledRoute> routes = new ArrayList<>();
        for (int i = 0; i < policy.routes().size(); i++) {
            final RoutePolicy route = policy.routes().get(i);
            // Before the checks below that skip the rest of a route: schema problems are reported with theirs.
            ContentRules content = null;
            try {
                content = ContentRules.compile(route.messages());
            } catch (ContentRulesException e) {
                problems.add(loaded.locations().at("routes[" + i + "]." + e.field(), e.getMessage()));
            }
            final SslContextFactory.Client upstreamTls;
            try {
                upstreamTls = UpstreamTls.create(route.upstream().tls());
            } catch (TlsConfigException e) {
                problems.add(tlsProblem(loaded, "routes[" + i + "].upstream.tls.", e));
                continue;
            }
            final List<HandshakeCheck> checks;
            try {
                checks = handshakeChecks(route, limits.route(route.name()), jwksExecutor, resources, sharedBuckets, executor);
            } catch (CheckConfigException e) {
                problems.add(loaded.locations().at("routes[" + i + "]." + e.field, e.getMessage()));
                continue;
            }
            final MessageRules[] messageRules = CompiledRoute.messageRules(route, limits.route(route.name()),
                    content != null && content.active() ? content : null);
            final TokenSources tokens = route.auth().jwt().map(jwt -> TokenSources.parse(jwt.tokenSources())).orElse(null);
            routes.add(new CompiledRoute(
                    route,
                    RouteMatcher.from(route.match(), policy.proxy().pathMatching()),
                    new HandshakeChain(checks, route.mode()),
                    new UpstreamConnector(route.upstream(), upstreamTls, executor, scheduler),
                    new UpstreamHeaders(route.upstream().headers(), tokens),
                    tokens,
                    messageRules[0],
                    messageRules[1],
                    events.apply(route.name())));
        }
        if (!problems.isEmpty()) {
            closeAll(resources);
            throw new PolicyException(problems);
        }
        return new CompiledPolicy(policy, routes, TrustedProxies.of(policy.proxy().trustedProxies()), listenerTls, resources);
    }

    /**
     * Routes that {@code pathMatching: normalized} could not tell apart: paths that differ only in
     * case or a trailing slash ({@code /admin} and {@code /Admin/}), of the same kind, for the same
     * host, on a listener they share. One of them could never be reached, and which one would depend
     * on the order they were written in: say which is meant instead. Paths written identically are
     * left as before (the first written wins).
     */
    private static List<PolicyProblem> caseTwins(LoadedPolicy loaded) {
        final Policy policy = loaded.policy();
        if (policy.proxy().pathMatching() != ProxyPolicy.PathMatching.NORMALIZED) {
            return List.of();
        }
        final List<PolicyProblem> problems = new ArrayList<>();
        for (int i = 0; i < policy.routes().size(); i++) {
            final MatchPolicy match = policy.routes().get(i).match();
            for (int j = 0; j < i; j++) {
                final MatchPolicy other = policy.routes().get(j).match();
                if (comparedAs(match).equals(comparedAs(other)) && !writtenPath(match).equals(writtenPath(other))
                        && shareAListener(policy, match, other)) {
                    problems.add(loaded.locations().at("routes[" + i + "].match." + (match.path().isPresent() ? "path" : "pathPrefix"),
                            "'" + writtenPath(match) + "' is the same path as routes[" + j + "]'s '" + writtenPath(other)
                            + "' when case and a trailing slash are ignored (proxy.pathMatching: normalized), so one of the two"
                            + " routes could never be reached (expected: one route for the path, or proxy.pathMatching: exact"
                            + " for an upstream that tells them apart)"));
                    break;
                }
            }
        }
        return problems;
    }

    private static String writtenPath(MatchPolicy match) {
        return match.path().or(match::pathPrefix).orElse("/");
    }

    /** Host, kind and path as a normalized route table compares them. */
    private static String comparedAs(MatchPolicy match) {
        final String folded = RequestPaths.fold(writtenPath(match));
        return match.host().orElse("") + (match.path().isPresent() ? " path " + RequestPaths.withoutTrailingSlash(folded) : " prefix " + folded);
    }

    private static boolean shareAListener(Policy policy, MatchPolicy a, MatchPolicy b) {
        return policy.listeners().stream().anyMatch(l -> a.servedOn(l.name()) && b.servedOn(l.name()));
    }

    /**
     * Locates a TLS problem. The first certificate pair may have been written as the top-level
     * {@code certificate}/{@code privateKey} keys rather than {@code certificates[0]}.
     */
    private static PolicyProblem tlsProblem(LoadedPolicy loaded, String prefix, TlsConfigException e) {
        String path = prefix + e.field();
        if (loaded.locations().find(path).isEmpty() && e.field().startsWith("certificates[0].")) {
            path = prefix + e.field().substring("certificates[0].".length());
        }
        return loaded.locations().at(path, e.getMessage());
    }

    /**
     * The route's handshake checks in their fixed order (STYLE §3.3): cheap and unauthenticated
     * first, then the token, then the caps that need its subject. A route without {@code origin:}
     * gets SPEC §3's default: same-origin or no Origin.
     */
    private static List<HandshakeCheck> handshakeChecks(
            RoutePolicy route, LimitState.RouteLimits state, Executor jwksExecutor, List<AutoCloseable> resources,
            RedisBuckets sharedBuckets, Executor executor) {
        final List<HandshakeCheck> checks = new ArrayList<>();
        try {
            checks.add(route.origin().<HandshakeCheck>map(OriginAllowListCheck::new).orElse(SameOriginCheck.INSTANCE));
        } catch (IllegalArgumentException e) {
            throw new CheckConfigException("origin.allow", e);
        }
        final boolean clientCertificate = route.auth().clientCertificate() == AuthPolicy.ClientCertificate.REQUIRED;
        final LimitsPolicy limits = route.limits();
        if (limits.handshakesPerIp().isPresent()) {
            final LimitsPolicy.RateLimitPolicy rate = limits.handshakesPerIp().get();
            try {
                // With a Redis store the local buckets are the fallback (onUnavailable: local).
                checks.add(new HandshakeRateCheck(state.handshakesPerIp(rate), rate, sharedBuckets, route.name(), executor));
            } catch (IllegalArgumentException e) {
                throw new CheckConfigException("limits.handshakes.perIp", e);
            }
        }
        if (clientCertificate) {
            // Before the token: a field read, and a client without a certificate need not have its token verified.
            checks.add(ClientCertificateCheck.INSTANCE);
        }
        if (route.auth().jwt().isPresent()) {
            final AuthPolicy.JwtPolicy jwt = route.auth().jwt().get();
            final JwtVerifier verifier;
            try {
                // The JVM's default trust (javax.net.ssl.trustStore) decides which IdPs a jwksUri may be served by.
                verifier = JwtVerifier.create(jwt, Clock.systemUTC(), jwksExecutor, null);
            } catch (JwtConfigException e) {
                throw new CheckConfigException("auth.jwt." + e.field(), e.getMessage());
            }
            resources.add(verifier);
            // A token without sub would be counted against no subject: with perSubject limits it is refused.
            final boolean subjectRequired = limits.connectionsPerSubject().isPresent() || limits.messagesPerSubject().isPresent();
            checks.add(new JwtCheck(verifier, TokenSources.parse(jwt.tokenSources()), String.join(", ", jwt.tokenSources()),
                                    subjectRequired));
        }
        // Connection caps count per instance even with a Redis store: sharing live connection
        // counts needs leases renewed by heartbeats (a crashed instance's slots must expire).
        if (limits.connectionsPerIp().isPresent() || limits.connectionsPerSubject().isPresent()) {
            checks.add(new ConnectionLimitCheck(
                    state.connectionsPerIp(), limits.connectionsPerIp().orElse(0),
                    state.connectionsPerSubject(), limits.connectionsPerSubject().orElse(0)));
        }
        return List.copyOf(checks);
    }

    /** A check could not be built from a field that bound fine (e.g. a rate Bucket4j cannot represent). */
    private static final class CheckConfigException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final String field;

        CheckConfigException(String field, IllegalArgumentException cause) {
            super(cause.getMessage(), cause);
            this.field = field;
        }

        CheckConfigException(String field, String message) {
            super(message);
            this.field = field;
        }
    }

    Policy policy() {
        return policy;
    }

    /** The routes served on the listener called {@code listener}; none for a name the policy has no listener of. */
    RouteTable<CompiledRoute> routes(String listener) {
        final RouteTable<CompiledRoute> table = listener == null ? null : routes.get(listener);
        return table != null ? table : RouteTable.of(List.of(), CompiledRoute::matcher);
    }

    List<CompiledRoute> routeList() {
        return routeList;
    }


    TrustedProxies trustedProxies() {
        return trustedProxies;
    }

    int maxConnections() {
        return policy.proxy().maxConnections();
    }

    /** The TLS context of listener {@code index}, or null for a plain ws:// listener. */
    SslContextFactory.Server listenerTls(int index) {
        return listenerTls.get(index);
    }

    /**
     * A handshake starts using this policy, which then stays alive until the matching
     * {@link #release()}; false if it stopped already (a reload retired it and its last user left
     * since the handshake read it), and the handshake must take the current policy instead.
     */
    boolean tryAcquire() {
        while (true) {
            final int now = inUse.get();
            if (now < 0) {
                return false;
            }
            if (inUse.compareAndSet(now, now + 1)) {
                return true;
            }
        }
    }

    /** A handshake failed or a connection closed; a retired policy stops once nothing uses it. */
    void release() {
        if (inUse.decrementAndGet() == 0 && retired && inUse.compareAndSet(0, STOPPED)) {
            stop();
        }
    }

    /**
     * A reload replaced this policy: its upstream clients still carry the connections that started
     * with it, so they stop only when the last of those closes (SPEC §6: reload drops nothing).
     */
    void retire() {
        retired = true;
        if (inUse.compareAndSet(0, STOPPED)) {
            stop();
        }
    }

    /** Whether it stopped: retired with no user left, or stopped with the proxy. */
    boolean isStopped() {
        return stopped.get();
    }

    void start() throws Exception {
        for (CompiledRoute route : routeList) {
            route.connector().start();
        }
    }

    void stop() {
        if (stopped.getAndSet(true)) {
            return;
        }
        // Stopped with the proxy while still in use: no handshake may take it any more.
        inUse.set(STOPPED);
        for (CompiledRoute route : routeList) {
            try {
                route.connector().stop();
            } catch (Exception ignored) {
                // Stopping a client that failed to start has nothing more to release.
            }
        }
        closeAll(resources);
    }

    private static void closeAll(List<AutoCloseable> resources) {
        for (AutoCloseable resource : resources) {
            try {
                resource.close();
            } catch (Exception ignored) {
                // Closing only cancels schedules; nothing is left to release if it fails.
            }
        }
    }
}
