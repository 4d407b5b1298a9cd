package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns the located YAML tree into the config records, collecting every problem instead of stopping
 * at the first. Binds the root and the checks across sections; each section has its own
 * binder ({@link ListenerBinder}, {@link TlsBinder}, {@link AdminBinder}, {@link ProxyBinder},
 * {@link AuditBinder}, {@link RateLimitStoreBinder}, {@link RouteBinder} with {@link UpstreamBinder},
 * {@link AuthBinder}, {@link LimitsBinder} and {@link MessagesBinder}), all sharing one {@link Values}.
 *
 * <p>Defaults live in the section binders, each written once; each record's Javadoc names them. A
 * section whose keys all have defaults is bound from an empty map when it is left out
 * ({@link Fields#section}). Cross-field checks run once the fields they relate are bound, and are
 * reported at the field that owns them.
 */
final class Binder {

    private final Path file;
    private final Values v;
    private final ListenerBinder listenerBinder;
    private final AdminBinder adminBinder;
    private final ProxyBinder proxyBinder;
    private final AuditBinder auditBinder;
    private final RateLimitStoreBinder storeBinder;
    private final RouteBinder routeBinder;

    Binder(Path file, Map<String, String> env) {
        this.file = file;
        this.v = new Values(file, env);
        this.listenerBinder = new ListenerBinder(v);
        this.adminBinder = new AdminBinder(v);
        this.proxyBinder = new ProxyBinder(v);
        this.auditBinder = new AuditBinder(v);
        this.storeBinder = new RateLimitStoreBinder(v);
        this.routeBinder = new RouteBinder(v);
    }

    /** Every problem found. */
    List<PolicyProblem> problems() {
        return v.problems();
    }

    PolicyLocations locations() {
        return v.locations();
    }

    Optional<Policy> bind(YNode root) {
        v.locate("", root);
        final Optional<Fields> fields = v.fields(
                root,
                "",
                List.of("version", "listeners", "admin", "proxy", "audit", "rateLimitStore", "routes"),
                "a map with version, listeners and routes");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<YNode> versionNode = f.required("version", "version: 1");
        versionNode.ifPresent(n -> v.parse(n, "version", text -> {
            if (!text.strip().equals("1")) {
                throw new IllegalArgumentException("'" + text + "' is not supported (expected: 1)");
            }
            return 1;
        }));

        final List<ListenerPolicy> listeners = new ArrayList<>();
        final int[] listenerItems = {0};
        f.required("listeners", "a list of listeners with a port")
                .flatMap(n -> v.list(n, "listeners", "a list of listeners"))
                .ifPresent(items -> {
                    if (items.items().isEmpty()) {
                        v.problem(items, "listeners", "is empty (expected: at least one listener)");
                    }
                    listenerItems[0] = items.items().size();
                    for (int i = 0; i < items.items().size(); i++) {
                        listenerBinder
                                .bind(items.items().get(i), "listeners[" + i + "]")
                                .ifPresent(listeners::add);
                    }
                });
        listenerBinder.checkTogether(listeners);

        final Optional<AdminPolicy> admin = f.get("admin").flatMap(n -> adminBinder.bind(n, "admin"));
        admin.ifPresent(a -> {
            for (ListenerPolicy l : listeners) {
                if (a.port() != 0 && a.port() == l.port()) {
                    v.problemAt(
                            "admin.port",
                            "port " + a.port() + " is also a listener's port (expected: a port of its own)");
                }
                a.probes()
                        .filter(probes -> probes.port() != 0 && probes.port() == l.port())
                        .ifPresent(probes -> v.problemAt(
                                "admin.probes.port",
                                "port " + probes.port() + " is also a listener's port (expected: a port of its own)"));
            }
        });
        final Optional<ProxyPolicy> proxy = proxyBinder.bind(f.section("proxy"), "proxy");
        final Optional<AuditPolicy> audit = auditBinder.bind(f.section("audit"), "audit");
        final Optional<RateLimitStorePolicy> store = storeBinder.bind(f.section("rateLimitStore"), "rateLimitStore");
        if (proxy.flatMap(ProxyPolicy::clusterMaxConnections).isPresent()
                && store.filter(s -> s.type() == RateLimitStorePolicy.Type.LOCAL)
                        .isPresent()) {
            // Only a shared store can count the cluster's connections: without one the key would cap nothing.
            v.problemAt(
                    "proxy.clusterMaxConnections",
                    "needs rateLimitStore.type: redis (expected: a shared store, or proxy.maxConnections"
                            + " per instance)");
        }

        final List<RoutePolicy> routes = new ArrayList<>();
        final List<String> routePaths = new ArrayList<>();
        f.required("routes", "a list of routes")
                .flatMap(n -> v.list(n, "routes", "a list of routes"))
                .ifPresent(items -> {
                    if (items.items().isEmpty()) {
                        v.problem(items, "routes", "is empty (expected: at least one route)");
                    }
                    final Map<String, Integer> names = new HashMap<>();
                    for (int i = 0; i < items.items().size(); i++) {
                        final String path = "routes[" + i + "]";
                        final Optional<RoutePolicy> route =
                                routeBinder.bind(items.items().get(i), path);
                        route.ifPresent(r -> {
                            final Integer first = names.putIfAbsent(r.name(), routes.size());
                            if (first != null) {
                                v.problemAt(
                                        path + ".name",
                                        "'" + r.name()
                                                + "' is already the name of another route (expected: unique names)");
                            }
                            routes.add(r);
                            routePaths.add(path);
                        });
                    }
                });
        if (listeners.size() == listenerItems[0]) {
            // With a listener missing, its name would look unknown: its own problem says enough.
            checkRouteListeners(listeners, routes, routePaths);
        }
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new Policy(
                1, listeners, admin, proxy.orElseThrow(), audit.orElseThrow(), store.orElseThrow(), routes, file));
    }

    /**
     * Where each route is served. A route for clients with certificates must not open on a listener
     * that lets anyone in: on a policy that has both kinds of listener, every route names its
     * listeners, so a client certificate cannot be skipped by connecting to the other port.
     */
    private void checkRouteListeners(
            List<ListenerPolicy> listeners, List<RoutePolicy> routes, List<String> routePaths) {
        final Map<String, ListenerPolicy> byName = new HashMap<>();
        listeners.forEach(l -> byName.putIfAbsent(l.name(), l));
        final List<String> requiring = listeners.stream()
                .filter(ListenerPolicy::requiresClientCertificate)
                .map(ListenerPolicy::name)
                .toList();
        final List<String> open = listeners.stream()
                .filter(l -> !l.requiresClientCertificate())
                .map(ListenerPolicy::name)
                .toList();
        for (int r = 0; r < routes.size(); r++) {
            final RoutePolicy route = routes.get(r);
            final String path = routePaths.get(r);
            final List<String> named = route.match().listeners();
            boolean known = true;
            for (int i = 0; i < named.size(); i++) {
                if (!byName.containsKey(named.get(i))) {
                    known = false;
                    v.problemAt(
                            path + ".match.listeners[" + i + "]",
                            "'" + named.get(i) + "' is not a listener's name (expected: one of "
                                    + String.join(
                                            ", ",
                                            byName.keySet().stream().sorted().toList()) + ")");
                }
            }
            if (!known || listeners.size() != byName.size()) {
                continue;
            }
            if (named.isEmpty() && !requiring.isEmpty() && !open.isEmpty()) {
                v.problemAt(
                        path + ".match",
                        "no listeners, so the route is served both on '" + requiring.get(0)
                                + "', which requires client certificates, and on '" + open.get(0) + "', which does not"
                                + " (expected: listeners: [names of the listeners the route belongs to])");
            }
            final List<ListenerPolicy> served = named.isEmpty()
                    ? listeners
                    : named.stream().map(byName::get).toList();
            if (route.auth().clientCertificate() == AuthPolicy.ClientCertificate.REQUIRED) {
                served.stream()
                        .filter(l -> !l.asksForClientCertificate())
                        .findFirst()
                        .ifPresent(l -> v.problemAt(
                                path + ".auth.clientCertificate",
                                "listener '" + l.name() + "' asks for no client certificate, so the route"
                                        + " would refuse every handshake there (expected: "
                                        + "match.listeners naming listeners with clientAuth:"
                                        + " optional or required)"));
            }
            if (served.stream().noneMatch(ListenerPolicy::asksForClientCertificate)) {
                route.upstream().headers().set().forEach((header, value) -> {
                    if (value.contains("${tls.")) {
                        v.problemAt(
                                path + ".upstream.headers.set." + header,
                                "uses ${tls.…} but no listener of the route asks for"
                                        + " client certificates (expected: a listener with "
                                        + "clientAuth: optional or required, or a static value)");
                    }
                });
            }
        }
    }
}
