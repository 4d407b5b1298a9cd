package io.wsguard.policy;

import io.wsguard.check.Mode;
import io.wsguard.policy.PolicyLocations.Location;
import io.wsguard.policy.YamlTree.Entry;
import io.wsguard.policy.YamlTree.Scalar;
import io.wsguard.policy.YamlTree.YList;
import io.wsguard.policy.YamlTree.YMap;
import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Turns the located YAML tree into the config records, collecting every problem instead of stopping
 * at the first (STYLE §3.4). Defaults live here, and only here; each record's Javadoc names them.
 * Cross-field checks run once the fields they relate are bound, and are reported at the field that
 * owns them.
 */
final class Binder {

    private static final long ONE_GIB = 1L << 30;
    private static final Pattern ROUTE_NAME = Pattern.compile("[A-Za-z0-9_.-]+");
    private static final Pattern HEADER_NAME = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
    private static final Pattern HOST_LABELS = Pattern.compile("[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*");
    private static final Pattern TOKEN_SOURCE = Pattern.compile("header|subprotocol|(query|cookie):[A-Za-z0-9_.-]+");
    private static final Set<String> JWT_ALGORITHMS = Set.of(
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512", "EdDSA");
    private static final List<String> DEFAULT_PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");

    private final Path file;
    private final Path baseDir;
    private final EnvSubstitution env;
    private final List<PolicyProblem> problems = new ArrayList<>();
    private final List<PolicyProblem> notEnforced = new ArrayList<>();
    private final Map<String, Location> locations = new HashMap<>();
    private final Map<String, Location> keyLocations = new HashMap<>();

    Binder(Path file, Map<String, String> env) {
        this.file = file;
        final Path parent = file.toAbsolutePath().normalize().getParent();
        this.baseDir = parent == null ? Path.of("").toAbsolutePath() : parent;
        this.env = new EnvSubstitution(env);
    }

    /** Every problem found, validation first, then features not enforced yet. */
    List<PolicyProblem> problems() {
        final List<PolicyProblem> all = new ArrayList<>(problems);
        all.addAll(notEnforced);
        return all;
    }

    PolicyLocations locations() {
        return new PolicyLocations(file, locations);
    }

    // ---------------------------------------------------------------- root

    Optional<Policy> bind(YNode root) {
        locations.put("", new Location(root.line(), root.column()));
        final Optional<Fields> fields = fields(root, "",
                List.of("version", "listeners", "admin", "proxy", "audit", "rateLimitStore", "routes"),
                "a map with version, listeners and routes");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<YNode> versionNode = f.required("version", "version: 1");
        versionNode.ifPresent(n -> parse(n, "version", text -> {
            if (!text.strip().equals("1")) {
                throw new IllegalArgumentException("'" + text + "' is not supported (expected: 1)");
            }
            return 1;
        }));

        final List<ListenerPolicy> listeners = new ArrayList<>();
        final int[] listenerItems = {0};
        f.required("listeners", "a list of listeners with a port").flatMap(n -> list(n, "listeners", "a list of listeners"))
                .ifPresent(items -> {
                    if (items.items().isEmpty()) {
                        problem(items, "listeners", "is empty (expected: at least one listener)");
                    }
                    listenerItems[0] = items.items().size();
                    for (int i = 0; i < items.items().size(); i++) {
                        listener(items.items().get(i), "listeners[" + i + "]").ifPresent(listeners::add);
                    }
                });
        checkListenerAddresses(listeners);
        checkListenerNames(listeners);

        final Optional<AdminPolicy> admin = f.get("admin").flatMap(n -> admin(n, "admin"));
        admin.ifPresent(a -> {
            for (ListenerPolicy l : listeners) {
                if (a.port() != 0 && a.port() == l.port()) {
                    problemAt("admin.port", "port " + a.port() + " is also a listener's port (expected: a port of its own)");
                }
            }
        });
        final Optional<ProxyPolicy> proxy = f.get("proxy").map(n -> proxy(n, "proxy"))
                .orElseGet(() -> Optional.of(new ProxyPolicy(List.of(), 100_000, Duration.ofSeconds(10), Duration.ofSeconds(30),
                        ProxyPolicy.PathMatching.NORMALIZED)));
        final Optional<AuditPolicy> audit = f.get("audit").map(n -> audit(n, "audit"))
                .orElseGet(() -> Optional.of(new AuditPolicy(AuditPolicy.Sink.FILE, baseDir.resolve("logs/audit.jsonl").normalize(),
                        100L << 20, 10, 0, Optional.empty())));
        final Optional<RateLimitStorePolicy> store = f.get("rateLimitStore").map(n -> rateLimitStore(n, "rateLimitStore"))
                .orElseGet(() -> Optional.of(new RateLimitStorePolicy(RateLimitStorePolicy.Type.LOCAL, Optional.empty())));

        final List<RoutePolicy> routes = new ArrayList<>();
        final List<String> routePaths = new ArrayList<>();
        f.required("routes", "a list of routes").flatMap(n -> list(n, "routes", "a list of routes")).ifPresent(items -> {
            if (items.items().isEmpty()) {
                problem(items, "routes", "is empty (expected: at least one route)");
            }
            final Map<String, Integer> names = new HashMap<>();
            for (int i = 0; i < items.items().size(); i++) {
                final String path = "routes[" + i + "]";
                final Optional<RoutePolicy> route = route(items.items().get(i), path);
                route.ifPresent(r -> {
                    final Integer first = names.putIfAbsent(r.name(), routes.size());
                    if (first != null) {
                        problemAt(path + ".name", "'" + r.name() + "' is already the name of another route (expected: unique names)");
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
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new Policy(1, listeners, admin, proxy.orElseThrow(), audit.orElseThrow(),
                store.orElseThrow(), routes, file));
    }

    private void checkListenerAddresses(List<ListenerPolicy> listeners) {
        final Set<String> seen = new HashSet<>();
        for (int i = 0; i < listeners.size(); i++) {
            final ListenerPolicy l = listeners.get(i);
            // Port 0 is ephemeral: several listeners may ask for one each.
            if (l.port() != 0 && !seen.add(l.host() + ":" + l.port())) {
                problemAt("listeners[" + i + "].port",
                        l.host() + ":" + l.port() + " is used by another listener (expected: one listener per host and port)");
            }
        }
    }

    private void checkListenerNames(List<ListenerPolicy> listeners) {
        final Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < listeners.size(); i++) {
            final String name = listeners.get(i).name();
            final Integer first = seen.putIfAbsent(name, i);
            if (first == null) {
                continue;
            }
            final String path = "listeners[" + i + "]";
            final ListenerPolicy other = listeners.get(first);
            if (listeners.get(i).port() != 0 && other.port() == listeners.get(i).port() && other.host().equals(listeners.get(i).host())) {
                continue; // one address twice: already reported at its port
            }
            if (locations.containsKey(path + ".name")) {
                problemAt(path + ".name", "'" + name + "' is already the name of listeners[" + first + "] (expected: unique names)");
            } else {
                problemAt(path, "its default name '" + name + "' is already the name of listeners[" + first
                        + "] (expected: name: … on one of them, so that routes can tell them apart)");
            }
        }
    }

    /**
     * Where each route is served. A route for clients with certificates must not open on a listener
     * that lets anyone in: on a policy that has both kinds of listener, every route names its
     * listeners, so a client certificate cannot be skipped by connecting to the other port.
     */
    private void checkRouteListeners(List<ListenerPolicy> listeners, List<RoutePolicy> routes, List<String> routePaths) {
        final Map<String, ListenerPolicy> byName = new HashMap<>();
        listeners.forEach(l -> byName.putIfAbsent(l.name(), l));
        final List<String> requiring = listeners.stream().filter(ListenerPolicy::requiresClientCertificate).map(ListenerPolicy::name).toList();
        final List<String> open = listeners.stream().filter(l -> !l.requiresClientCertificate()).map(ListenerPolicy::name).toList();
        for (int r = 0; r < routes.size(); r++) {
            final RoutePolicy route = routes.get(r);
            final String path = routePaths.get(r);
            final List<String> named = route.match().listeners();
            boolean known = true;
            for (int i = 0; i < named.size(); i++) {
                if (!byName.containsKey(named.get(i))) {
                    known = false;
                    problemAt(path + ".match.listeners[" + i + "]", "'" + named.get(i) + "' is not a listener's name (expected: one of "
                            + String.join(", ", byName.keySet().stream().sorted().toList()) + ")");
                }
            }
            if (!known || listeners.size() != byName.size()) {
                continue;
            }
            if (named.isEmpty() && !requiring.isEmpty() && !open.isEmpty()) {
                problemAt(path + ".match", "no listeners, so the route is served both on '" + requiring.get(0)
                        + "', which requires client certificates, and on '" + open.get(0) + "', which does not"
                        + " (expected: listeners: [names of the listeners the route belongs to])");
            }
            final List<ListenerPolicy> served = named.isEmpty() ? listeners : named.stream().map(byName::get).toList();
            if (route.auth().clientCertificate() == AuthPolicy.ClientCertificate.REQUIRED) {
                served.stream().filter(l -> !l.asksForClientCertificate()).findFirst().ifPresent(l -> problemAt(
                        path + ".auth.clientCertificate", "listener '" + l.name() + "' asks for no client certificate, so the route"
                                + " would refuse every handshake there (expected: match.listeners naming listeners with clientAuth:"
                                + " optional or required)"));
            }
            if (served.stream().noneMatch(ListenerPolicy::asksForClientCertificate)) {
                route.upstream().headers().set().forEach((header, value) -> {
                    if (value.contains("${tls.")) {
                        problemAt(path + ".upstream.headers.set." + header, "uses ${tls.…} but no listener of the route asks for"
                                + " client certificates (expected: a listener with clientAuth: optional or required, or a static value)");
                    }
                });
            }
        }
    }

    // ---------------------------------------------------------------- listeners, admin, proxy, audit, store

    private Optional<ListenerPolicy> listener(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("port", "host", "tls", "name"), "a map with port");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<Integer> port = f.required("port", "a port 0..65535").flatMap(n -> integer(n, f.child("port"), 0, 65535));
        final Optional<String> host = f.get("host").map(n -> host(n, f.child("host"))).orElse(Optional.of("0.0.0.0"));
        final Optional<TlsPolicy> tls = f.get("tls").flatMap(n -> tls(n, f.child("tls")));
        final Optional<String> name = f.get("name").flatMap(n -> parse(n, f.child("name"), text -> {
            if (!ROUTE_NAME.matcher(text).matches()) {
                throw new IllegalArgumentException("'" + text + "' is not a listener name (expected: letters, digits, '_', '.', '-')");
            }
            return text;
        }));
        if (problems.size() > before) {
            return Optional.empty();
        }
        // The default names the listener by what tells listeners apart on one host: scheme and port.
        final String listenerName = name.orElse((f.has("tls") ? "wss-" : "ws-") + port.orElseThrow());
        return Optional.of(new ListenerPolicy(listenerName, host.orElseThrow(), port.orElseThrow(), tls));
    }

    private Optional<String> host(YNode node, String path) {
        return parse(node, path, text -> {
            if (text.isEmpty() || !(HOST_LABELS.matcher(text).matches() || text.contains(":"))) {
                throw new IllegalArgumentException("'" + text + "' is not a host (expected: an IP address or a host name)");
            }
            return text;
        });
    }

    private Optional<TlsPolicy> tls(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path,
                List.of("certificate", "privateKey", "certificates", "keyStore", "keyStorePassword", "protocols", "clientAuth", "clientCAs"),
                "a map with certificate and privateKey, or keyStore");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final List<TlsPolicy.KeyPairPolicy> pairs = new ArrayList<>();
        final Optional<Path> certificate = f.get("certificate").flatMap(n -> file(n, f.child("certificate")));
        final Optional<Path> privateKey = f.get("privateKey").flatMap(n -> file(n, f.child("privateKey")));
        if (f.has("certificate") != f.has("privateKey")) {
            problem(f.map, path, "certificate and privateKey go together (expected: both, or neither)");
        } else if (certificate.isPresent() && privateKey.isPresent()) {
            pairs.add(new TlsPolicy.KeyPairPolicy(certificate.get(), privateKey.get()));
        }
        f.get("certificates").flatMap(n -> list(n, f.child("certificates"), "a list of {certificate, privateKey}")).ifPresent(items -> {
            for (int i = 0; i < items.items().size(); i++) {
                final String itemPath = f.child("certificates") + "[" + i + "]";
                fields(items.items().get(i), itemPath, List.of("certificate", "privateKey"), "a map with certificate and privateKey")
                        .ifPresent(pf -> {
                            final Optional<Path> c = pf.required("certificate", "a PEM file").flatMap(n -> file(n, pf.child("certificate")));
                            final Optional<Path> k = pf.required("privateKey", "a PEM file").flatMap(n -> file(n, pf.child("privateKey")));
                            if (c.isPresent() && k.isPresent()) {
                                pairs.add(new TlsPolicy.KeyPairPolicy(c.get(), k.get()));
                            }
                        });
            }
        });
        final Optional<Path> keyStore = f.get("keyStore").flatMap(n -> file(n, f.child("keyStore")));
        final Optional<Secret> keyStorePassword = f.get("keyStorePassword").flatMap(n -> secret(n, f.child("keyStorePassword")));
        final boolean hasPairs = f.has("certificate") || f.has("certificates");
        if (hasPairs && f.has("keyStore")) {
            problem(f.map, path, "both PEM certificates and a keyStore (expected: one of them)");
        } else if (!hasPairs && !f.has("keyStore")) {
            problem(f.map, path, "no key material (expected: certificate and privateKey, certificates, or keyStore)");
        } else if (f.has("certificates") && !f.has("certificate") && f.get("certificates").get() instanceof YList l && l.items().isEmpty()) {
            problemAt(f.child("certificates"), "is empty (expected: at least one {certificate, privateKey})");
        }
        if (f.has("keyStore") && !f.has("keyStorePassword")) {
            problem(f.map, path, "keyStore needs keyStorePassword (expected: keyStorePassword: ${KS_PASSWORD})");
        }
        if (f.has("keyStorePassword") && !f.has("keyStore")) {
            problemAt(f.child("keyStorePassword"), "no keyStore uses it (expected: keyStore, or remove it)");
        }
        final List<String> protocols = f.get("protocols").map(n -> {
            final List<String> out = stringList(n, f.child("protocols"), "a list of TLS protocols");
            for (int i = 0; i < out.size(); i++) {
                if (!DEFAULT_PROTOCOLS.contains(out.get(i))) {
                    problemAt(f.child("protocols") + "[" + i + "]", "'" + out.get(i)
                            + "' is not allowed (expected: TLSv1.3 or TLSv1.2; older ones are refused at check time)");
                }
            }
            if (out.isEmpty() && n instanceof YList) {
                problem(n, f.child("protocols"), "is empty (expected: TLSv1.3 and/or TLSv1.2)");
            }
            return out;
        }).orElse(DEFAULT_PROTOCOLS);
        final Optional<String> clientAuth = f.get("clientAuth").map(n -> choice(n, f.child("clientAuth"), "none", "optional", "required"))
                .orElse(Optional.of("none"));
        final Optional<Path> clientCAs = f.get("clientCAs").flatMap(n -> file(n, f.child("clientCAs")));
        clientAuth.ifPresent(mode -> {
            if (!mode.equals("none") && !f.has("clientCAs")) {
                problemAt(f.child("clientAuth"), mode + " needs clientCAs (expected: clientCAs: a PEM bundle of client CAs)");
            }
            if (mode.equals("none") && f.has("clientCAs")) {
                problemAt(f.child("clientCAs"), "unused while clientAuth is none (expected: clientAuth: optional or required)");
            }
        });
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new TlsPolicy(pairs, keyStore, keyStorePassword, protocols,
                enumOf(TlsPolicy.ClientAuth.class, clientAuth.orElseThrow()), clientCAs));
    }

    private Optional<AdminPolicy> admin(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("host", "port", "token"), "a map with host, port and token");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> host = f.get("host").map(n -> host(n, f.child("host"))).orElse(Optional.of("127.0.0.1"));
        final Optional<Integer> port = f.get("port").map(n -> integer(n, f.child("port"), 0, 65535)).orElse(Optional.of(9090));
        final Optional<Secret> token = f.get("token").flatMap(n -> secret(n, f.child("token"))).filter(s -> !s.isEmpty());
        if (problems.size() > before) {
            return Optional.empty();
        }
        if (token.isEmpty() && !Loopback.isLoopbackName(host.orElseThrow())) {
            // /admin/* closes connections and reloads the policy: open to the network, anyone could.
            problem(f.get("host").orElse(node), f.child("host"), host.orElseThrow()
                    + " is reachable from other machines, and admin.token is not set: set it (e.g. token: ${WSGUARD_ADMIN_TOKEN}) or bind to 127.0.0.1");
            return Optional.empty();
        }
        return Optional.of(new AdminPolicy(host.orElseThrow(), port.orElseThrow(), token));
    }

    private Optional<ProxyPolicy> proxy(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("trustedProxies", "maxConnections", "handshakeTimeout", "drainTimeout",
                "pathMatching"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final List<String> trusted = f.get("trustedProxies").map(n -> {
            final List<String> out = stringList(n, f.child("trustedProxies"), "a list of CIDRs");
            for (int i = 0; i < out.size(); i++) {
                try {
                    Cidr.check(out.get(i));
                } catch (IllegalArgumentException e) {
                    problemAt(f.child("trustedProxies") + "[" + i + "]", e.getMessage());
                }
            }
            return out;
        }).orElse(List.of());
        final Optional<Integer> maxConnections = f.get("maxConnections")
                .map(n -> integer(n, f.child("maxConnections"), 1, Integer.MAX_VALUE)).orElse(Optional.of(100_000));
        final Optional<Duration> handshakeTimeout = f.get("handshakeTimeout")
                .map(n -> duration(n, f.child("handshakeTimeout"), true)).orElse(Optional.of(Duration.ofSeconds(10)));
        final Optional<Duration> drainTimeout = f.get("drainTimeout")
                .map(n -> duration(n, f.child("drainTimeout"), false)).orElse(Optional.of(Duration.ofSeconds(30)));
        final Optional<String> pathMatching = f.get("pathMatching").map(n -> choice(n, f.child("pathMatching"), "normalized", "exact"))
                .orElse(Optional.of("normalized"));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new ProxyPolicy(trusted, maxConnections.orElseThrow(), handshakeTimeout.orElseThrow(), drainTimeout.orElseThrow(),
                enumOf(ProxyPolicy.PathMatching.class, pathMatching.orElseThrow())));
    }

    private Optional<AuditPolicy> audit(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path,
                List.of("sink", "path", "maxFileSize", "maxFiles", "sampleBytes", "integrityKey", "linesPerClient"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> sink = f.get("sink").map(n -> choice(n, f.child("sink"), "file", "stdout")).orElse(Optional.of("file"));
        // The log need not exist yet (the sink creates it): resolved, not checked.
        final Optional<Path> logPath = f.get("path").map(n -> parse(n, f.child("path"), this::resolve))
                .orElse(Optional.of(resolve("logs/audit.jsonl")));
        final Optional<Long> maxFileSize = f.get("maxFileSize").map(n -> size(n, f.child("maxFileSize"), 1, Long.MAX_VALUE))
                .orElse(Optional.of(100L << 20));
        final Optional<Integer> maxFiles = f.get("maxFiles").map(n -> integer(n, f.child("maxFiles"), 1, 10_000)).orElse(Optional.of(10));
        final Optional<Long> sampleBytes = f.get("sampleBytes").map(n -> size(n, f.child("sampleBytes"), 0, 64 * 1024))
                .orElse(Optional.of(0L));
        final Optional<Secret> integrityKey = f.get("integrityKey").flatMap(n -> secret(n, f.child("integrityKey"))).filter(s -> !s.isEmpty());
        final Optional<Rate> linesPerClient = f.get("linesPerClient").map(n -> parse(n, f.child("linesPerClient"), text -> {
            if (text.contains("iB")) {
                throw new IllegalArgumentException("'" + text + "' is a byte rate (expected: a count of lines like 60/min)");
            }
            return Rate.parse(text);
        })).orElse(Optional.of(AuditPolicy.DEFAULT_LINES_PER_CLIENT));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new AuditPolicy(enumOf(AuditPolicy.Sink.class, sink.orElseThrow()), logPath.orElseThrow(),
                maxFileSize.orElseThrow(), maxFiles.orElseThrow(), sampleBytes.orElseThrow().intValue(), integrityKey,
                linesPerClient.orElseThrow()));
    }

    private Optional<RateLimitStorePolicy> rateLimitStore(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("type", "redis"), "a map with type");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> type = f.get("type").map(n -> choice(n, f.child("type"), "local", "redis")).orElse(Optional.of("local"));
        final Optional<RateLimitStorePolicy.RedisPolicy> redis = f.get("redis").flatMap(n -> redis(n, f.child("redis")));
        if (type.filter("redis"::equals).isPresent() && !f.has("redis")) {
            problem(f.map, path, "type redis needs redis (expected: redis: {uri: redis://host:6379})");
        }
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new RateLimitStorePolicy(enumOf(RateLimitStorePolicy.Type.class, type.orElseThrow()), redis));
    }

    private Optional<RateLimitStorePolicy.RedisPolicy> redis(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("uri", "onUnavailable"), "a map with uri");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> uri = f.get("uri").map(n -> parse(n, f.child("uri"), text -> {
            URI u;
            try {
                u = new URI(text);
            } catch (URISyntaxException e) {
                u = URI.create("invalid:x");
            }
            if (!"redis".equals(u.getScheme()) && !"rediss".equals(u.getScheme()) || u.getHost() == null) {
                // Never echo it: a Redis URI may hold a password.
                throw new IllegalArgumentException("is not a Redis URI (expected: redis://host:6379 or rediss://host:6379)");
            }
            try {
                // What the client will parse at start: a port or database it cannot read fails here.
                io.lettuce.core.RedisURI.create(text);
            } catch (RuntimeException e) {
                // Never Lettuce's message either: it may quote the URI.
                throw new IllegalArgumentException(
                        "is not a valid Redis URI (expected: redis://[[user:]password@]host[:port][/database])");
            }
            return text;
        })).orElse(Optional.of("redis://127.0.0.1:6379"));
        final Optional<String> onUnavailable = f.get("onUnavailable")
                .map(n -> choice(n, f.child("onUnavailable"), "local", "allow", "deny")).orElse(Optional.of("local"));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new RateLimitStorePolicy.RedisPolicy(uri.orElseThrow(),
                enumOf(RateLimitStorePolicy.OnUnavailable.class, onUnavailable.orElseThrow())));
    }

    // ---------------------------------------------------------------- routes

    private Optional<RoutePolicy> route(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path,
                List.of("name", "match", "mode", "upstream", "origin", "auth", "limits", "messages"),
                "a map with name, match, upstream and auth");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> name = f.required("name", "a route name like chat").flatMap(n -> parse(n, f.child("name"), text -> {
            if (!ROUTE_NAME.matcher(text).matches()) {
                throw new IllegalArgumentException("'" + text + "' is not a route name (expected: letters, digits, '_', '.', '-')");
            }
            return text;
        }));
        final Optional<MatchPolicy> match = f.required("match", "match: {path: /chat} or {pathPrefix: /chat/}")
                .flatMap(n -> match(n, f.child("match")));
        final Optional<String> mode = f.get("mode").map(n -> choice(n, f.child("mode"), "enforce", "monitor")).orElse(Optional.of("enforce"));
        final Optional<UpstreamPolicy> upstream = f.required("upstream", "upstream: {targets: [ws://host:port/path]}")
                .flatMap(n -> upstream(n, f.child("upstream")));
        final Optional<OriginPolicy> origin = f.get("origin").flatMap(n -> origin(n, f.child("origin")));
        final Optional<AuthPolicy> auth = f.required("auth", "auth: none, or auth: {jwt: …}").flatMap(n -> auth(n, f.child("auth")));
        final Optional<LimitsPolicy> limits = f.get("limits").map(n -> limits(n, f.child("limits")))
                .orElseGet(() -> Optional.of(new LimitsPolicy(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(),
                        Optional.empty(), Optional.empty(), Action.CLOSE, Duration.ofMinutes(10), Duration.ofHours(24))));
        final Optional<MessagePolicy> messages = f.get("messages").map(n -> messages(n, f.child("messages")))
                .orElseGet(() -> Optional.of(new MessagePolicy(MessagePolicy.Direction.INBOUND, MessagePolicy.DEFAULT_MAX_SIZE,
                        true, false, Optional.empty(), Optional.empty(), List.of(), Action.CLOSE)));
        // ${jwt.CLAIM} expands verified claims: without auth.jwt there are none to expand.
        if (upstream.isPresent() && auth.isPresent() && auth.get().jwt().isEmpty()) {
            upstream.get().headers().set().forEach((header, value) -> {
                if (value.contains("${jwt.")) {
                    problemAt(f.child("upstream") + ".headers.set." + header,
                            "uses ${jwt.…} but the route has no auth.jwt (expected: auth: {jwt: …}, or a static value)");
                }
            });
        }
        // Only verified tokens carry a subject: without auth.jwt a per-subject limit would limit nobody.
        if (auth.isPresent() && auth.get().jwt().isEmpty() && limits.isPresent()) {
            if (limits.get().messagesPerSubject().isPresent()) {
                problemAt(f.child("limits") + ".messages.perSubject",
                        "limits messages per token subject but the route has no auth.jwt (expected: auth: {jwt: …}, or perConnection)");
            }
            if (limits.get().connectionsPerSubject().isPresent()) {
                problemAt(f.child("limits") + ".connections.perSubject",
                        "limits connections per token subject but the route has no auth.jwt (expected: auth: {jwt: …}, or perIp)");
            }
        }
        // A message larger than the byte bucket could never pass: every one of them would be refused.
        if (limits.isPresent() && messages.isPresent() && limits.get().bytesPerConnection().isPresent()
                && limits.get().bytesPerConnection().get().burst() < messages.get().maxSize()) {
            problemAt(f.child("limits") + ".bytes.perConnection",
                    "burst of " + limits.get().bytesPerConnection().get().burst() + " bytes is smaller than messages.maxSize ("
                            + messages.get().maxSize() + " bytes), so larger messages could never pass"
                            + " (expected: burst >= maxSize)");
        }
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new RoutePolicy(name.orElseThrow(), match.orElseThrow(), enumOf(Mode.class, mode.orElseThrow()),
                upstream.orElseThrow(), origin, auth.orElseThrow(), limits.orElseThrow(), messages.orElseThrow()));
    }

    private Optional<MatchPolicy> match(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("host", "path", "pathPrefix", "listeners"), "a map with path or pathPrefix");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> host = f.get("host").flatMap(n -> parse(n, f.child("host"), text -> {
            final String name = text.startsWith("*.") ? text.substring(2) : text;
            if (!HOST_LABELS.matcher(name).matches()) {
                throw new IllegalArgumentException("'" + text + "' is not a host (expected: chat.example.com or *.example.com)");
            }
            return text.toLowerCase(Locale.ROOT);
        }));
        final Function<String, String> absolute = text -> {
            if (!text.startsWith("/")) {
                throw new IllegalArgumentException("'" + text + "' does not start with / (expected: like /chat)");
            }
            return text;
        };
        final Optional<String> exact = f.get("path").flatMap(n -> parse(n, f.child("path"), absolute));
        final Optional<String> prefix = f.get("pathPrefix").flatMap(n -> parse(n, f.child("pathPrefix"), absolute));
        if (f.has("path") == f.has("pathPrefix")) {
            problem(f.map, path, (f.has("path") ? "both path and pathPrefix" : "neither path nor pathPrefix")
                    + " (expected: exactly one of them)");
        }
        final List<String> listeners = f.get("listeners").map(n -> {
            final List<String> out = stringList(n, f.child("listeners"), "a list of listener names");
            if (out.isEmpty() && n instanceof YList) {
                problem(n, f.child("listeners"), "is empty (expected: at least one listener name; leave it out for every listener)");
            }
            return out;
        }).orElse(List.of());
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new MatchPolicy(host, exact, prefix, listeners));
    }

    private Optional<UpstreamPolicy> upstream(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("targets", "balance", "connectTimeout", "tls", "headers"),
                "a map with targets");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final List<URI> targets = new ArrayList<>();
        f.required("targets", "targets: [ws://host:port/path]").flatMap(n -> list(n, f.child("targets"), "a list of ws:// or wss:// URIs"))
                .ifPresent(items -> {
                    if (items.items().isEmpty()) {
                        problem(items, f.child("targets"), "is empty (expected: at least one ws:// or wss:// URI)");
                    }
                    for (int i = 0; i < items.items().size(); i++) {
                        parse(items.items().get(i), f.child("targets") + "[" + i + "]", text -> {
                            final URI u = uri(text, "ws://host:port/path or wss://…");
                            if (!("ws".equals(u.getScheme()) || "wss".equals(u.getScheme())) || u.getHost() == null) {
                                throw new IllegalArgumentException("'" + Redaction.uri(text) + "' is not a WebSocket URI (expected: ws://host:port/path or wss://…)");
                            }
                            return u;
                        }).ifPresent(targets::add);
                    }
                });
        final Optional<String> balance = f.get("balance").map(n -> choice(n, f.child("balance"), "round-robin", "least-connections"))
                .orElse(Optional.of("round-robin"));
        final Optional<Duration> connectTimeout = f.get("connectTimeout").map(n -> duration(n, f.child("connectTimeout"), true))
                .orElse(Optional.of(Duration.ofSeconds(5)));
        final Optional<UpstreamPolicy.UpstreamTlsPolicy> tls = f.get("tls").flatMap(n -> upstreamTls(n, f.child("tls")));
        if (f.has("tls") && !targets.isEmpty() && targets.stream().noneMatch(u -> "wss".equals(u.getScheme()))) {
            problemAt(f.child("tls"), "no wss:// target uses it (expected: a wss:// target, or remove tls)");
        }
        final Optional<UpstreamPolicy.HeadersPolicy> headers = f.get("headers").map(n -> headers(n, f.child("headers")))
                .orElse(Optional.of(new UpstreamPolicy.HeadersPolicy(List.of(), Map.of(), List.of())));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamPolicy(targets, enumOf(UpstreamPolicy.Balance.class, balance.orElseThrow()),
                connectTimeout.orElseThrow(), tls, headers.orElseThrow()));
    }

    private Optional<UpstreamPolicy.UpstreamTlsPolicy> upstreamTls(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("trustedCAs", "verifyHostname"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<Path> trusted = f.get("trustedCAs").flatMap(n -> file(n, f.child("trustedCAs")));
        final Optional<Boolean> verify = f.get("verifyHostname").map(n -> bool(n, f.child("verifyHostname"))).orElse(Optional.of(true));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamPolicy.UpstreamTlsPolicy(trusted, verify.orElseThrow()));
    }

    private Optional<UpstreamPolicy.HeadersPolicy> headers(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("forward", "set", "remove"), "a map with forward, set or remove");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final List<String> forward = f.get("forward").map(n -> headerNames(n, f.child("forward"))).orElse(List.of());
        final List<String> remove = f.get("remove").map(n -> headerNames(n, f.child("remove"))).orElse(List.of());
        final Map<String, String> set = new LinkedHashMap<>();
        f.get("set").flatMap(n -> fields(n, f.child("set"), null, "a map of header to value")).ifPresent(sf -> {
            for (String header : sf.keys()) {
                final String headerPath = sf.child(header);
                if (!HEADER_NAME.matcher(header).matches()) {
                    problemAt(headerPath, "'" + header + "' is not a header name (expected: letters, digits and -)");
                }
                sf.get(header).flatMap(n -> text(n, headerPath, true)).ifPresent(v -> {
                    // CR or LF in a value would let it smuggle further headers to the upstream.
                    if (v.chars().anyMatch(c -> c < 0x20 && c != '\t' || c == 0x7f)) {
                        problemAt(headerPath, "the value holds control characters (expected: one line of text)");
                    } else {
                        set.put(header, v);
                    }
                });
            }
        });
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamPolicy.HeadersPolicy(forward, set, remove));
    }

    private List<String> headerNames(YNode node, String path) {
        final List<String> names = stringList(node, path, "a list of header names");
        for (int i = 0; i < names.size(); i++) {
            if (!HEADER_NAME.matcher(names.get(i)).matches()) {
                problemAt(path + "[" + i + "]", "'" + names.get(i) + "' is not a header name (expected: letters, digits and -)");
            }
        }
        return names;
    }

    private Optional<OriginPolicy> origin(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("allow", "allowMissing"), "a map with allow");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final List<String> allow = f.get("allow").map(n -> {
            final List<String> out = stringList(n, f.child("allow"), "a list of origins");
            for (int i = 0; i < out.size(); i++) {
                try {
                    OriginPattern.parse(out.get(i));
                } catch (IllegalArgumentException e) {
                    problemAt(f.child("allow") + "[" + i + "]", e.getMessage());
                }
            }
            return out;
        }).orElse(List.of());
        final Optional<Boolean> allowMissing = f.get("allowMissing").map(n -> bool(n, f.child("allowMissing"))).orElse(Optional.of(false));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new OriginPolicy(allow, allowMissing.orElseThrow()));
    }

    private Optional<AuthPolicy> auth(YNode node, String path) {
        if (node instanceof Scalar scalar && !scalar.isNull()) {
            return text(node, path, false).flatMap(text -> {
                if (text.equals("none")) {
                    return Optional.of(AuthPolicy.NONE);
                }
                problem(node, path, "'" + text + "' is not allowed (expected: none, or a map with jwt)");
                return Optional.empty();
            });
        }
        final Optional<Fields> fields = fields(node, path, List.of("jwt", "clientCertificate"), "none, or a map with jwt");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> clientCertificate = f.get("clientCertificate")
                .map(n -> choice(n, f.child("clientCertificate"), "required", "none")).orElse(Optional.of("none"));
        final Optional<AuthPolicy.JwtPolicy> jwt = f.has("clientCertificate") && !f.has("jwt") ? Optional.empty()
                : f.required("jwt", "jwt: {issuer: …, algorithms: […], jwksUri: …}").flatMap(n -> jwt(n, f.child("jwt")));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new AuthPolicy(jwt, enumOf(AuthPolicy.ClientCertificate.class, clientCertificate.orElseThrow())));
    }

    private Optional<AuthPolicy.JwtPolicy> jwt(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("issuer", "audience", "algorithms", "jwksUri", "jwksFile",
                "publicKey", "secret", "clockSkew", "tokenSources", "require", "onExpiry", "allowNoExpiry"),
                "a map with algorithms and one key source");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> issuer = f.get("issuer").flatMap(n -> text(n, f.child("issuer"), false));
        final List<String> audience = f.get("audience").map(n -> n instanceof Scalar
                ? text(n, f.child("audience"), false).map(List::of).orElse(List.<String>of())
                : stringList(n, f.child("audience"), "a list of audiences")).orElse(List.of());
        final List<String> algorithms = f.required("algorithms", "algorithms: [RS256]").map(n -> {
            final List<String> out = stringList(n, f.child("algorithms"), "a list of JWS algorithms");
            if (out.isEmpty() && n instanceof YList) {
                problem(n, f.child("algorithms"), "is empty (expected: at least one, like RS256)");
            }
            for (int i = 0; i < out.size(); i++) {
                final String alg = out.get(i);
                if (alg.equalsIgnoreCase("none")) {
                    problemAt(f.child("algorithms") + "[" + i + "]", "'none' is never accepted (expected: a signing algorithm like RS256)");
                } else if (!JWT_ALGORITHMS.contains(alg)) {
                    problemAt(f.child("algorithms") + "[" + i + "]", "'" + alg + "' is not a JWS algorithm (expected: one of "
                            + String.join(", ", JWT_ALGORITHMS.stream().sorted().toList()) + ")");
                }
            }
            return out;
        }).orElse(List.of());
        final Optional<URI> jwksUri = f.get("jwksUri").flatMap(n -> parse(n, f.child("jwksUri"), text -> {
            final URI u = uri(text, "an https:// URI");
            if (!"https".equals(u.getScheme()) || u.getHost() == null) {
                throw new IllegalArgumentException("'" + Redaction.uri(text) + "' is not an https:// URI (expected: keys fetched over TLS)");
            }
            return u;
        }));
        final Optional<Path> jwksFile = f.get("jwksFile").flatMap(n -> file(n, f.child("jwksFile")));
        final Optional<Path> publicKey = f.get("publicKey").flatMap(n -> file(n, f.child("publicKey")));
        final Optional<Secret> secret = f.get("secret").flatMap(n -> secret(n, f.child("secret")));
        secret.filter(Secret::isEmpty).ifPresent(s -> problemAt(f.child("secret"), "is empty (expected: a secret of at least 32 bytes)"));
        final List<String> keySources = f.keys().stream()
                .filter(List.of("jwksUri", "jwksFile", "publicKey", "secret")::contains).toList(); // as written
        if (keySources.isEmpty()) {
            problem(f.map, path, "no key source (expected: exactly one of jwksUri, jwksFile, publicKey, secret)");
        }
        // At the key that conflicts, not at the map: the first source alone would have been fine.
        for (String extra : keySources.subList(Math.min(1, keySources.size()), keySources.size())) {
            final Scalar key = f.map.entries().stream().map(Entry::key).filter(k -> k.text().equals(extra)).findFirst().orElseThrow();
            problem(key, f.child(extra), "a second key source, next to " + keySources.get(0)
                    + " (expected: exactly one of jwksUri, jwksFile, publicKey, secret)");
        }
        final Optional<Duration> clockSkew = f.get("clockSkew").map(n -> duration(n, f.child("clockSkew"), false))
                .orElse(Optional.of(Duration.ofSeconds(30)));
        final List<String> tokenSources = f.get("tokenSources").map(n -> {
            final List<String> out = stringList(n, f.child("tokenSources"), "a list of token sources");
            for (int i = 0; i < out.size(); i++) {
                if (!TOKEN_SOURCE.matcher(out.get(i)).matches()) {
                    problemAt(f.child("tokenSources") + "[" + i + "]", "'" + out.get(i)
                            + "' is not a token source (expected: header, subprotocol, query:NAME or cookie:NAME)");
                }
            }
            if (out.isEmpty() && n instanceof YList) {
                problem(n, f.child("tokenSources"), "is empty (expected: at least one, like header)");
            }
            return out;
        }).orElse(List.of("header"));
        final Map<String, String> require = new LinkedHashMap<>();
        f.get("require").flatMap(n -> fields(n, f.child("require"), null, "a map of claim to value")).ifPresent(rf -> {
            for (String claim : rf.keys()) {
                rf.get(claim).ifPresent(v -> {
                    if (v instanceof Scalar s && !s.type().equals("str")) {
                        problem(v, rf.child(claim), "'" + s.text() + "' is not a string (expected: a quoted string like \""
                                + s.text() + "\")");
                    } else {
                        text(v, rf.child(claim), false).ifPresent(t -> require.put(claim, t));
                    }
                });
            }
        });
        final Optional<String> onExpiry = f.get("onExpiry").map(n -> choice(n, f.child("onExpiry"), "close", "ignore"))
                .orElse(Optional.of("close"));
        final Optional<Boolean> allowNoExpiry = f.get("allowNoExpiry").map(n -> bool(n, f.child("allowNoExpiry")))
                .orElse(Optional.of(false));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new AuthPolicy.JwtPolicy(issuer, audience, algorithms, jwksUri, jwksFile, publicKey, secret,
                clockSkew.orElseThrow(), tokenSources, require, enumOf(AuthPolicy.OnExpiry.class, onExpiry.orElseThrow()),
                allowNoExpiry.orElseThrow()));
    }

    private Optional<LimitsPolicy> limits(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("handshakes", "connections", "messages", "bytes", "onExceed",
                "idleTimeout", "maxLifetime"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        Optional<LimitsPolicy.RateLimitPolicy> handshakesPerIp = Optional.empty();
        Optional<Integer> connectionsPerIp = Optional.empty();
        Optional<Integer> connectionsPerSubject = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> messagesPerConnection = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> messagesPerSubject = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> bytesPerConnection = Optional.empty();
        final Optional<Fields> handshakes = f.get("handshakes").flatMap(n -> fields(n, f.child("handshakes"), List.of("perIp"), "a map with perIp"));
        if (handshakes.isPresent()) {
            final Fields h = handshakes.get();
            handshakesPerIp = h.get("perIp").flatMap(n -> rateLimit(n, h.child("perIp"), false));
        }
        final Optional<Fields> connections = f.get("connections")
                .flatMap(n -> fields(n, f.child("connections"), List.of("perIp", "perSubject"), "a map with perIp or perSubject"));
        if (connections.isPresent()) {
            final Fields c = connections.get();
            connectionsPerIp = c.get("perIp").flatMap(n -> integer(n, c.child("perIp"), 1, Integer.MAX_VALUE));
            connectionsPerSubject = c.get("perSubject").flatMap(n -> integer(n, c.child("perSubject"), 1, Integer.MAX_VALUE));
        }
        final Optional<Fields> messages = f.get("messages")
                .flatMap(n -> fields(n, f.child("messages"), List.of("perConnection", "perSubject"), "a map with perConnection or perSubject"));
        if (messages.isPresent()) {
            final Fields m = messages.get();
            messagesPerConnection = m.get("perConnection").flatMap(n -> rateLimit(n, m.child("perConnection"), false));
            messagesPerSubject = m.get("perSubject").flatMap(n -> rateLimit(n, m.child("perSubject"), false));
        }
        final Optional<Fields> bytes = f.get("bytes").flatMap(n -> fields(n, f.child("bytes"), List.of("perConnection"), "a map with perConnection"));
        if (bytes.isPresent()) {
            final Fields b = bytes.get();
            bytesPerConnection = b.get("perConnection").flatMap(n -> rateLimit(n, b.child("perConnection"), true));
        }
        final Optional<String> onExceed = f.get("onExceed").map(n -> choice(n, f.child("onExceed"), "close", "drop")).orElse(Optional.of("close"));
        final Optional<Duration> idle = f.get("idleTimeout").map(n -> duration(n, f.child("idleTimeout"), true))
                .orElse(Optional.of(Duration.ofMinutes(10)));
        final Optional<Duration> lifetime = f.get("maxLifetime").map(n -> duration(n, f.child("maxLifetime"), true))
                .orElse(Optional.of(Duration.ofHours(24)));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new LimitsPolicy(handshakesPerIp, connectionsPerIp, connectionsPerSubject, messagesPerConnection,
                messagesPerSubject, bytesPerConnection, enumOf(Action.class, onExceed.orElseThrow()), idle.orElseThrow(), lifetime.orElseThrow()));
    }

    private Optional<LimitsPolicy.RateLimitPolicy> rateLimit(YNode node, String path, boolean ofBytes) {
        final Optional<Fields> fields = fields(node, path, List.of("rate", "burst"), "a map with rate, like {rate: 10/s, burst: 20}");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<Rate> rate = f.required("rate", "rate: like 10/s").flatMap(n -> parse(n, f.child("rate"), text -> {
            final Rate r = Rate.parse(text);
            if (!ofBytes && text.contains("iB")) {
                throw new IllegalArgumentException("'" + text + "' is a byte rate (expected: a count like 50/s)");
            }
            // Bucket4j refills at most one token per nanosecond; a faster rate would fail every connection.
            if ((double) r.amount() / r.per().toNanos() > 1.0) {
                throw new IllegalArgumentException("'" + text + "' is faster than wsguard can meter (expected: at most "
                        + (ofBytes ? "953MiB/s" : "1000000000/s") + ")");
            }
            return r;
        }));
        final Optional<Long> burst = f.get("burst").flatMap(n -> ofBytes
                ? size(n, f.child("burst"), 1, Long.MAX_VALUE)
                : integer(n, f.child("burst"), 1, Integer.MAX_VALUE).map(Integer::longValue));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new LimitsPolicy.RateLimitPolicy(rate.orElseThrow(), burst.orElse(rate.orElseThrow().amount())));
    }

    private Optional<MessagePolicy> messages(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("direction", "maxSize", "binary", "compression", "json",
                "sanitize", "deny", "onViolation", "maxFragments"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> direction = f.get("direction").map(n -> choice(n, f.child("direction"), "inbound", "both"))
                .orElse(Optional.of("inbound"));
        final Optional<Long> maxSize = f.get("maxSize").map(n -> size(n, f.child("maxSize"), 1, ONE_GIB))
                .orElse(Optional.of(MessagePolicy.DEFAULT_MAX_SIZE));
        final Optional<String> binary = f.get("binary").map(n -> choice(n, f.child("binary"), "allow", "deny")).orElse(Optional.of("allow"));
        final Optional<String> compression = f.get("compression").map(n -> choice(n, f.child("compression"), "allow", "deny"))
                .orElse(Optional.of("deny"));
        final Optional<MessagePolicy.JsonPolicy> json = f.get("json").flatMap(n -> json(n, f.child("json")));
        final Optional<MessagePolicy.SanitizePolicy> sanitize = f.get("sanitize").flatMap(n -> sanitize(n, f.child("sanitize")));
        final List<MessagePolicy.DenyRulePolicy> deny = f.get("deny").map(n -> denyRules(n, f.child("deny"))).orElse(List.of());
        final Optional<String> onViolation = f.get("onViolation").map(n -> choice(n, f.child("onViolation"), "close", "drop"))
                .orElse(Optional.of("close"));
        final Optional<Long> maxFragments = f.get("maxFragments")
                .map(n -> integer(n, f.child("maxFragments"), 1, Integer.MAX_VALUE).map(Integer::longValue))
                .orElseGet(() -> maxSize.map(MessagePolicy::defaultMaxFragments));
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new MessagePolicy(enumOf(MessagePolicy.Direction.class, direction.orElseThrow()), maxSize.orElseThrow(),
                binary.orElseThrow().equals("allow"), compression.orElseThrow().equals("allow"), json, sanitize, deny,
                enumOf(Action.class, onViolation.orElseThrow()), maxFragments.orElseThrow()));
    }

    private Optional<MessagePolicy.JsonPolicy> json(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("required", "schema", "typeField", "schemas"),
                "a map with required: true, schema, or typeField and schemas");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<Boolean> required = f.get("required").map(n -> bool(n, f.child("required"))).orElse(Optional.of(false));
        final Optional<Path> schema = f.get("schema").flatMap(n -> file(n, f.child("schema")));
        final Optional<String> typeField = f.get("typeField").flatMap(n -> text(n, f.child("typeField"), false));
        final Map<String, Path> schemas = new LinkedHashMap<>();
        f.get("schemas").flatMap(n -> fields(n, f.child("schemas"), null, "a map of type to schema file")).ifPresent(sf -> {
            if (sf.keys().isEmpty()) {
                problem(sf.map, f.child("schemas"), "is empty (expected: at least one type: schema file)");
            }
            for (String type : sf.keys()) {
                sf.get(type).flatMap(n -> file(n, sf.child(type))).ifPresent(p -> schemas.put(type, p));
            }
        });
        final boolean one = f.has("schema");
        final boolean byType = f.has("typeField") || f.has("schemas");
        if (one && byType) {
            problem(f.map, path, "both schema and typeField/schemas (expected: schema, or typeField and schemas)");
        } else if (!one && !byType && required.isPresent() && !required.get()) {
            // required: true alone means "every message is one well-formed JSON document"; without it
            // and a schema the section would check nothing a user could mean.
            problem(f.map, path, "no schema (expected: schema, typeField and schemas, or required: true)");
        } else if (byType && f.has("typeField") != f.has("schemas")) {
            problem(f.map, path, (f.has("typeField") ? "typeField without schemas" : "schemas without typeField")
                    + " (expected: typeField and schemas together)");
        }
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new MessagePolicy.JsonPolicy(required.orElseThrow(), schema, typeField, schemas));
    }

    private Optional<MessagePolicy.SanitizePolicy> sanitize(YNode node, String path) {
        final Optional<Fields> fields = fields(node, path, List.of("html", "fields"), "a map with html");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = problems.size();
        final Optional<String> html = f.get("html").map(n -> choice(n, f.child("html"), "strip", "formatting", "none"))
                .orElse(Optional.of("strip"));
        final List<String> jsonPaths = f.get("fields").map(n -> {
            final List<String> out = stringList(n, f.child("fields"), "a list of JSON paths like $.text");
            for (int i = 0; i < out.size(); i++) {
                if (!out.get(i).startsWith("$")) {
                    problemAt(f.child("fields") + "[" + i + "]", "'" + out.get(i) + "' is not a JSON path (expected: like $.text)");
                }
            }
            return out;
        }).orElse(List.of());
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new MessagePolicy.SanitizePolicy(enumOf(MessagePolicy.Html.class, html.orElseThrow()), jsonPaths));
    }

    private List<MessagePolicy.DenyRulePolicy> denyRules(YNode node, String path) {
        final List<MessagePolicy.DenyRulePolicy> rules = new ArrayList<>();
        list(node, path, "a list of {name, pattern}").ifPresent(items -> {
            final Set<String> names = new HashSet<>();
            for (int i = 0; i < items.items().size(); i++) {
                final String itemPath = path + "[" + i + "]";
                fields(items.items().get(i), itemPath, List.of("name", "pattern"), "a map with name and pattern").ifPresent(rf -> {
                    final Optional<String> name = rf.required("name", "name: a rule name").flatMap(n -> parse(n, rf.child("name"), text -> {
                        if (!ROUTE_NAME.matcher(text).matches()) {
                            throw new IllegalArgumentException("'" + text + "' is not a rule name (expected: letters, digits, '_', '.', '-')");
                        }
                        if (!names.add(text)) {
                            throw new IllegalArgumentException("'" + text + "' is already the name of another rule (expected: unique names)");
                        }
                        return text;
                    }));
                    final Optional<String> pattern = rf.required("pattern", "pattern: an RE2 regular expression")
                            .flatMap(n -> parse(n, rf.child("pattern"), text -> {
                                MessagePolicy.DenyRulePolicy.compile(text);
                                return text;
                            }));
                    if (name.isPresent() && pattern.isPresent()) {
                        rules.add(new MessagePolicy.DenyRulePolicy(name.get(), pattern.get()));
                    }
                });
            }
        });
        return rules;
    }

    // ---------------------------------------------------------------- values

    /** A map's entries, checked against {@code allowed} (null: any key, for maps of names to values). */
    private Optional<Fields> fields(YNode node, String path, List<String> allowed, String expected) {
        if (!(node instanceof YMap map)) {
            problem(node, path, "got " + node.kind() + " (expected: " + expected + ")");
            return Optional.empty();
        }
        final Map<String, YamlTree.Entry> byKey = new LinkedHashMap<>();
        for (Entry entry : map.entries()) {
            final String key = entry.key().text();
            final String keyPath = path.isEmpty() ? key : path + "." + key;
            final YamlTree.Entry first = byKey.putIfAbsent(key, entry);
            if (first != null) {
                problem(entry.key(), keyPath, "duplicate key, first at " + first.key().line() + ":" + first.key().column()
                        + " (expected: each key once)");
            } else if (allowed != null && !allowed.contains(key)) {
                problem(entry.key(), keyPath, "unknown key (expected: one of " + String.join(", ", allowed) + ")");
                byKey.remove(key);
            }
        }
        return Optional.of(new Fields(map, path, byKey));
    }

    /** A map's known keys; reading one records where it was written. */
    private final class Fields {
        final YMap map;
        final String path;
        private final Map<String, YamlTree.Entry> byKey;

        Fields(YMap map, String path, Map<String, YamlTree.Entry> byKey) {
            this.map = map;
            this.path = path;
            this.byKey = byKey;
        }

        String child(String key) {
            return path.isEmpty() ? key : path + "." + key;
        }

        boolean has(String key) {
            return byKey.containsKey(key);
        }

        List<String> keys() {
            return List.copyOf(byKey.keySet());
        }

        Optional<YNode> get(String key) {
            final YamlTree.Entry entry = byKey.get(key);
            if (entry == null) {
                return Optional.empty();
            }
            final String childPath = child(key);
            final Location keyLocation = new Location(entry.key().line(), entry.key().column());
            keyLocations.put(childPath, keyLocation);
            locations.put(childPath, entry.value() instanceof Scalar
                    ? new Location(entry.value().line(), entry.value().column()) : keyLocation);
            if (Enforcement.isNotEnforced(childPath, null)) {
                notEnforced(childPath);
            }
            return Optional.of(entry.value());
        }

        /** Like {@link #get}; when absent, a problem at this map. */
        Optional<YNode> required(String key, String expected) {
            if (!has(key)) {
                problem(map, path, "missing required key '" + key + "' (expected: " + expected + ")");
                return Optional.empty();
            }
            return get(key);
        }
    }

    private void notEnforced(String path) {
        final Location at = keyLocations.getOrDefault(path, locations.get(path));
        if (notEnforced.stream().noneMatch(p -> p.message().startsWith(path + ": "))) {
            notEnforced.add(new PolicyProblem(file, at.line(), at.column(), path + ": " + Enforcement.MESSAGE));
        }
    }

    private Optional<YList> list(YNode node, String path, String expected) {
        if (!(node instanceof YList list)) {
            problem(node, path, "got " + node.kind() + " (expected: " + expected + ")");
            return Optional.empty();
        }
        for (int i = 0; i < list.items().size(); i++) {
            final YNode item = list.items().get(i);
            locations.put(path + "[" + i + "]", new Location(item.line(), item.column()));
        }
        return Optional.of(list);
    }

    private List<String> stringList(YNode node, String path, String expected) {
        final List<String> out = new ArrayList<>();
        list(node, path, expected).ifPresent(items -> {
            for (int i = 0; i < items.items().size(); i++) {
                text(items.items().get(i), path + "[" + i + "]", false).ifPresent(out::add);
            }
        });
        return out;
    }

    /** A scalar's text after {@code ${…}} substitution. */
    private Optional<String> text(YNode node, String path, boolean allowJwtClaims) {
        if (!(node instanceof Scalar scalar) || scalar.isNull()) {
            problem(node, path, "got " + node.kind() + " (expected: a value)");
            return Optional.empty();
        }
        final String text;
        try {
            text = env.substitute(scalar.text(), allowJwtClaims);
        } catch (IllegalArgumentException e) {
            problem(node, path, e.getMessage());
            return Optional.empty();
        }
        if (Enforcement.isNotEnforced(path, text) && !Enforcement.isNotEnforced(path, null)) {
            notEnforced(path);
        }
        return Optional.of(text);
    }

    /** Parses one value; a failure becomes a problem at that value's line and column (STYLE snippet 6). */
    private <T> Optional<T> parse(YNode node, String path, Function<String, T> parser) {
        return text(node, path, false).flatMap(text -> {
            try {
                return Optional.of(parser.apply(text));
            } catch (IllegalArgumentException e) {
                problem(node, path, e.getMessage());
                return Optional.empty();
            }
        });
    }

    private Optional<Integer> integer(YNode node, String path, long min, long max) {
        return parse(node, path, text -> {
            final long value;
            try {
                value = Long.parseLong(text.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + text + "' is not an integer (expected: " + min + ".." + max + ")");
            }
            if (value < min || value > max) {
                throw new IllegalArgumentException(value + " is out of range (expected: " + min + ".." + max + ")");
            }
            return (int) value;
        });
    }

    private Optional<Long> size(YNode node, String path, long min, long max) {
        return parse(node, path, text -> {
            final long value = Units.bytes(text);
            if (value < min || value > max) {
                throw new IllegalArgumentException("'" + text + "' is out of range (expected: " + sizeText(min) + ".." + sizeText(max) + ")");
            }
            return value;
        });
    }

    private static String sizeText(long bytes) {
        if (bytes == Long.MAX_VALUE) {
            return "";
        }
        if (bytes >= (1 << 30) && bytes % (1 << 30) == 0) {
            return (bytes >> 30) + "GiB";
        }
        if (bytes >= (1 << 10) && bytes % (1 << 10) == 0) {
            return (bytes >> 10) + "KiB";
        }
        return Long.toString(bytes);
    }

    private Optional<Duration> duration(YNode node, String path, boolean positive) {
        return parse(node, path, text -> {
            final Duration value = Units.duration(text);
            if (positive && value.isZero()) {
                throw new IllegalArgumentException("'" + text + "' is zero (expected: a duration > 0)");
            }
            return value;
        });
    }

    private Optional<Boolean> bool(YNode node, String path) {
        return parse(node, path, text -> {
            if (text.equals("true") || text.equals("false")) {
                return Boolean.valueOf(text);
            }
            throw new IllegalArgumentException("'" + text + "' is not a boolean (expected: true or false)");
        });
    }

    /** One of {@code options}, as written in the YAML (lower case). */
    private Optional<String> choice(YNode node, String path, String... options) {
        return parse(node, path, text -> {
            if (List.of(options).contains(text)) {
                return text;
            }
            throw new IllegalArgumentException("'" + text + "' is not allowed (expected: " + String.join(" or ", options) + ")");
        });
    }

    /** A file the policy refers to: resolved against the policy file's directory, and readable now. */
    private Optional<Path> file(YNode node, String path) {
        return parse(node, path, text -> {
            if (text.isBlank()) {
                throw new IllegalArgumentException("is empty (expected: a file path)");
            }
            final Path resolved = resolve(text);
            if (!Files.exists(resolved)) {
                throw new IllegalArgumentException("file not found: " + resolved);
            }
            if (!Files.isRegularFile(resolved) || !Files.isReadable(resolved)) {
                throw new IllegalArgumentException("not a readable regular file: " + resolved);
            }
            return resolved;
        });
    }

    private Path resolve(String text) {
        return baseDir.resolve(text).normalize();
    }

    private Optional<Secret> secret(YNode node, String path) {
        // Never echo the value: type errors name only the kind of node.
        if (!(node instanceof Scalar scalar) || scalar.isNull()) {
            problem(node, path, "got " + node.kind() + " (expected: a secret, like ${NAME})");
            return Optional.empty();
        }
        return text(node, path, false).map(Secret::new);
    }

    private static URI uri(String text, String expected) {
        try {
            return new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("'" + Redaction.uri(text) + "' is not a URI: " + e.getReason() + " (expected: " + expected + ")");
        }
    }

    private static <E extends Enum<E>> E enumOf(Class<E> type, String yaml) {
        return Enum.valueOf(type, yaml.replace('-', '_').toUpperCase(Locale.ROOT));
    }

    private void problem(YNode at, String path, String message) {
        problems.add(new PolicyProblem(file, at.line(), at.column(), path.isEmpty() ? message : path + ": " + message));
    }

    /** A problem at a path already read (cross-field checks). */
    private void problemAt(String path, String message) {
        problems.add(locations().at(path, message));
    }
}
