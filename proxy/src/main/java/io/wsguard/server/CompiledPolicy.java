package io.wsguard.server;

import io.wsguard.handshake.HandshakeChain;
import io.wsguard.handshake.HandshakeConfigException;
import io.wsguard.handshake.SharedState;
import io.wsguard.handshake.TokenSources;
import io.wsguard.limit.LimitState;
import io.wsguard.message.ContentRules;
import io.wsguard.message.ContentRulesException;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.ListenerPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.MatchPolicy;
import io.wsguard.policy.Policy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyProblem;
import io.wsguard.policy.ProxyPolicy;
import io.wsguard.policy.RoutePolicy;
import io.wsguard.relay.SessionSettings;
import io.wsguard.route.RequestPaths;
import io.wsguard.route.RouteMatcher;
import io.wsguard.route.RouteTable;
import io.wsguard.tls.ClientTrust;
import io.wsguard.tls.ServerTls;
import io.wsguard.tls.TlsConfigException;
import io.wsguard.tls.UpstreamTls;
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
    /**
     * What the checks hold that must be let go of when the policy stops: the handshake chains (JWKS refresh schedules).
     */
    private final List<AutoCloseable> resources;

    private volatile boolean retired;
    private final AtomicBoolean stopped = new AtomicBoolean();

    private CompiledPolicy(
            Policy policy,
            List<CompiledRoute> routes,
            TrustedProxies trustedProxies,
            List<SslContextFactory.Server> listenerTls,
            List<AutoCloseable> resources) {
        this.policy = policy;
        this.resources = List.copyOf(resources);
        this.routeList = List.copyOf(routes);
        final Map<String, RouteTable<CompiledRoute>> tables = new HashMap<>();
        for (ListenerPolicy listener : policy.listeners()) {
            tables.put(
                    listener.name(),
                    RouteTable.of(
                            routeList.stream()
                                    .filter(r -> r.policy().match().servedOn(listener.name()))
                                    .toList(),
                            CompiledRoute::matcher));
        }
        this.routes = Map.copyOf(tables);
        this.trustedProxies = trustedProxies;
        this.listenerTls = listenerTls;
    }

    /**
     * Compiles {@code loaded}: everything that can fail (keys, certificates, trust stores, schemas,
     * patterns) fails here; no thread is started and no upstream client or scheduler made: those are
     * {@link #start}'s (a {@code jwksUri}'s key source, built here, starts its threads on its first
     * fetch). {@code limits} holds the counters and buckets that outlive this policy
     * (the running proxy's, so that a reload keeps counting), {@code shared} what the checks share with
     * the other instances ({@link SharedState#NONE}: nothing); the handshake checks continue on
     * {@code executor} after Redis answered, and verify {@code jwksUri} tokens on {@code jwksExecutor}.
     * Throws {@link PolicyException} with every located problem.
     */
    static CompiledPolicy compile(
            LoadedPolicy loaded, LimitState limits, SharedState shared, Executor executor, Executor jwksExecutor) {
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
        // The syslog sink's CA is read at start too; check reads it now, so that a bad bundle is found first.
        policy.audit()
                .syslog()
                .filter(s -> s.ca().isPresent() && policy.audit().sink() == AuditPolicy.Sink.SYSLOG)
                .ifPresent(syslog -> {
                    try {
                        ClientTrust.context(syslog.ca());
                    } catch (TlsConfigException e) {
                        problems.add(loaded.locations().at("audit.syslog." + e.field(), e.getMessage()));
                    }
                });
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
            final HandshakeChain chain;
            try {
                chain = HandshakeChain.compile(
                        route,
                        limits.route(route.name()),
                        shared,
                        policy.proxy().clusterMaxConnections().orElse(0),
                        executor,
                        jwksExecutor);
            } catch (HandshakeConfigException e) {
                problems.add(loaded.locations().at("routes[" + i + "]." + e.field(), e.getMessage()));
                continue;
            }
            resources.add(chain);
            final SessionSettings session = SessionSettings.from(
                    route,
                    limits.route(route.name()),
                    content != null && content.active() ? content : null,
                    shared.buckets());
            final TokenSources tokens = route.auth()
                    .jwt()
                    .map(jwt -> TokenSources.parse(jwt.tokenSources()))
                    .orElse(null);
            routes.add(new CompiledRoute(
                    route,
                    RouteMatcher.from(route.match(), policy.proxy().pathMatching()),
                    chain,
                    upstreamTls,
                    new UpstreamHeaders(route.upstream().headers(), tokens),
                    tokens,
                    session));
        }
        if (!problems.isEmpty()) {
            closeAll(resources);
            throw new PolicyException(problems);
        }
        return new CompiledPolicy(
                policy, routes, TrustedProxies.of(policy.proxy().trustedProxies()), listenerTls, resources);
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
                if (comparedAs(match).equals(comparedAs(other))
                        && !writtenPath(match).equals(writtenPath(other))
                        && shareAListener(policy, match, other)) {
                    problems.add(loaded.locations()
                            .at(
                                    "routes[" + i + "].match." + (match.path().isPresent() ? "path" : "pathPrefix"),
                                    "'" + writtenPath(match) + "' is the same path as routes[" + j + "]'s '"
                                            + writtenPath(other)
                                            + "' when case and a trailing slash are ignored "
                                            + "(proxy.pathMatching: normalized), so one of the two"
                                            + " routes could never be reached (expected: one "
                                            + "route for the path, or proxy.pathMatching: exact"
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
        return match.host().orElse("")
                + (match.path().isPresent()
                        ? " path " + RequestPaths.withoutTrailingSlash(folded)
                        : " prefix " + folded);
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
     * with it, so they stop only when the last of those closes (README, Admin port: reload drops nothing).
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

    /**
     * Starts serving: each route's upstream client, on the server's {@code executor} and
     * {@code scheduler}, and its session events, which {@code events} makes by route name.
     */
    void start(Executor executor, Scheduler scheduler, Function<String, ServerEvents> events) throws Exception {
        for (CompiledRoute route : routeList) {
            route.start(executor, scheduler, events.apply(route.name()));
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
                route.stop();
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
