package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Mode;
import io.wsguard.testing.SchemaChecked;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every documented default (the README's policy reference and the records' Javadoc), against a policy
 * that leaves its key out. A key of a section that may itself be left out is tried both ways: without
 * the section, and with the section but without the key.
 */
class PolicyDefaultsTest {

    /** One key with a default: the policy that leaves it out, what to read, and what the docs say. */
    record Default(String key, String yaml, Function<Policy, Object> actual, Object expected) {
        @Override
        public String toString() {
            return key;
        }
    }

    /** {@link PolicyFiles#MINIMAL} on one TLS listener on 8443, with nothing but its key pair. */
    private static final String TLS = PolicyFiles.MINIMAL.replace(
            "  - port: 8080\n", "  - port: 8443\n    tls: { certificate: server.crt, privateKey: server.key }\n");
    /** The smallest {@code auth.jwt}: algorithms and a secret. */
    private static final String JWT =
            "    auth: { jwt: { algorithms: [HS256], secret: 0123456789abcdef0123456789abcdef } }\n";

    @TempDir
    Path dir;

    static Stream<Default> defaults() {
        return Stream.of(
                // listeners[]
                root("listeners[].name (ws)", "", p -> p.listeners().get(0).name(), "ws-8080"),
                new Default(
                        "listeners[].name (wss)", TLS, p -> p.listeners().get(0).name(), "wss-8443"),
                root("listeners[].host", "", p -> p.listeners().get(0).host(), "0.0.0.0"),
                new Default("listeners[].tls.protocols", TLS, p -> tlsOf(p).protocols(), List.of("TLSv1.3", "TLSv1.2")),
                new Default("listeners[].tls.clientAuth", TLS, p -> tlsOf(p).clientAuth(), TlsPolicy.ClientAuth.NONE),
                // admin
                root("admin (none)", "", Policy::admin, Optional.empty()),
                root(
                        "admin.host",
                        "admin: { port: 9091 }\n",
                        p -> p.admin().orElseThrow().host(),
                        "127.0.0.1"),
                root(
                        "admin.port",
                        "admin: { host: 127.0.0.1 }\n",
                        p -> p.admin().orElseThrow().port(),
                        9090),
                root("admin.token", "admin: {}\n", p -> p.admin().orElseThrow().token(), Optional.empty()),
                // proxy
                root("proxy.trustedProxies (no proxy)", "", p -> p.proxy().trustedProxies(), List.of()),
                root(
                        "proxy.trustedProxies",
                        "proxy: { maxConnections: 5 }\n",
                        p -> p.proxy().trustedProxies(),
                        List.of()),
                root("proxy.maxConnections (no proxy)", "", p -> p.proxy().maxConnections(), 100_000),
                root(
                        "proxy.maxConnections",
                        "proxy: { drainTimeout: 1s }\n",
                        p -> p.proxy().maxConnections(),
                        100_000),
                root(
                        "proxy.handshakeTimeout (no proxy)",
                        "",
                        p -> p.proxy().handshakeTimeout(),
                        Duration.ofSeconds(10)),
                root(
                        "proxy.handshakeTimeout",
                        "proxy: { maxConnections: 5 }\n",
                        p -> p.proxy().handshakeTimeout(),
                        Duration.ofSeconds(10)),
                root("proxy.drainTimeout (no proxy)", "", p -> p.proxy().drainTimeout(), Duration.ofSeconds(30)),
                root(
                        "proxy.drainTimeout",
                        "proxy: { maxConnections: 5 }\n",
                        p -> p.proxy().drainTimeout(),
                        Duration.ofSeconds(30)),
                root(
                        "proxy.pathMatching (no proxy)",
                        "",
                        p -> p.proxy().pathMatching(),
                        ProxyPolicy.PathMatching.NORMALIZED),
                root(
                        "proxy.pathMatching",
                        "proxy: { maxConnections: 5 }\n",
                        p -> p.proxy().pathMatching(),
                        ProxyPolicy.PathMatching.NORMALIZED),
                // audit
                root("audit.sink (no audit)", "", p -> p.audit().sink(), AuditPolicy.Sink.FILE),
                root("audit.sink", "audit: { maxFiles: 3 }\n", p -> p.audit().sink(), AuditPolicy.Sink.FILE),
                root(
                        "audit.path (no audit)",
                        "",
                        PolicyDefaultsTest::auditPathFromPolicyDir,
                        Path.of("logs/audit.jsonl")),
                root(
                        "audit.path",
                        "audit: { maxFiles: 3 }\n",
                        PolicyDefaultsTest::auditPathFromPolicyDir,
                        Path.of("logs/audit.jsonl")),
                root("audit.maxFileSize (no audit)", "", p -> p.audit().maxFileSize(), 100L << 20),
                root(
                        "audit.maxFileSize",
                        "audit: { maxFiles: 3 }\n",
                        p -> p.audit().maxFileSize(),
                        100L << 20),
                root("audit.maxFiles (no audit)", "", p -> p.audit().maxFiles(), 10),
                root(
                        "audit.maxFiles",
                        "audit: { sink: stdout }\n",
                        p -> p.audit().maxFiles(),
                        10),
                root("audit.sampleBytes (no audit)", "", p -> p.audit().sampleBytes(), 0),
                root(
                        "audit.sampleBytes",
                        "audit: { maxFiles: 3 }\n",
                        p -> p.audit().sampleBytes(),
                        0),
                root("audit.integrityKey (no audit)", "", p -> p.audit().integrityKey(), Optional.empty()),
                root(
                        "audit.integrityKey",
                        "audit: { maxFiles: 3 }\n",
                        p -> p.audit().integrityKey(),
                        Optional.empty()),
                root(
                        "audit.linesPerClient (no audit)",
                        "",
                        p -> p.audit().linesPerClient(),
                        new Rate(60, Duration.ofMinutes(1))),
                root(
                        "audit.linesPerClient",
                        "audit: { maxFiles: 3 }\n",
                        p -> p.audit().linesPerClient(),
                        new Rate(60, Duration.ofMinutes(1))),
                // rateLimitStore
                root(
                        "rateLimitStore.type (no rateLimitStore)",
                        "",
                        p -> p.rateLimitStore().type(),
                        RateLimitStorePolicy.Type.LOCAL),
                root(
                        "rateLimitStore.type",
                        "rateLimitStore: {}\n",
                        p -> p.rateLimitStore().type(),
                        RateLimitStorePolicy.Type.LOCAL),
                root(
                        "rateLimitStore.redis (no rateLimitStore)",
                        "",
                        p -> p.rateLimitStore().redis(),
                        Optional.empty()),
                root(
                        "rateLimitStore.redis.uri",
                        "rateLimitStore: { type: redis, redis: { onUnavailable: deny } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().uri(),
                        "redis://127.0.0.1:6379"),
                root(
                        "rateLimitStore.redis.onUnavailable",
                        "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379' } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().onUnavailable(),
                        RateLimitStorePolicy.OnUnavailable.LOCAL),
                root(
                        "rateLimitStore.redis.cluster",
                        "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379' } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().cluster(),
                        false),
                root(
                        "rateLimitStore.redis.caFile",
                        "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379' } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().caFile(),
                        Optional.empty()),
                root(
                        "rateLimitStore.redis.password",
                        "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379' } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().password(),
                        Optional.empty()),
                root(
                        "rateLimitStore.redis.timeout",
                        "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379' } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().timeout(),
                        Duration.ofMillis(200)),
                root(
                        "rateLimitStore.redis.leaseTtl",
                        "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379' } }\n",
                        p -> p.rateLimitStore().redis().orElseThrow().leaseTtl(),
                        Duration.ofSeconds(15)),
                // routes[]
                route("routes[].mode", "", r -> r.mode(), Mode.ENFORCE),
                route("routes[].origin", "", r -> r.origin(), Optional.empty()),
                route("routes[].match.listeners", "", r -> r.match().listeners(), List.of()),
                route("routes[].match.host", "", r -> r.match().host(), Optional.empty()),
                // routes[].upstream
                route("routes[].upstream.balance", "", r -> r.upstream().balance(), UpstreamPolicy.Balance.ROUND_ROBIN),
                route(
                        "routes[].upstream.connectTimeout",
                        "",
                        r -> r.upstream().connectTimeout(),
                        Duration.ofSeconds(5)),
                route("routes[].upstream.tls", "", r -> r.upstream().tls(), Optional.empty()),
                new Default(
                        "routes[].upstream.tls.verifyHostname",
                        PolicyFiles.MINIMAL.replace(
                                "ws://127.0.0.1:9000/chat] }", "wss://127.0.0.1:9000/chat], tls: {} }"),
                        p -> p.routes().get(0).upstream().tls().orElseThrow().verifyHostname(),
                        true),
                route(
                        "routes[].upstream.headers (no headers)",
                        "",
                        r -> r.upstream().headers(),
                        new UpstreamPolicy.HeadersPolicy(List.of(), Map.of(), List.of())),
                new Default(
                        "routes[].upstream.headers.forward",
                        PolicyFiles.MINIMAL.replace("/chat] }", "/chat], headers: { remove: [X-A] } }"),
                        p -> p.routes().get(0).upstream().headers().forward(),
                        List.of()),
                new Default(
                        "routes[].upstream.headers.set",
                        PolicyFiles.MINIMAL.replace("/chat] }", "/chat], headers: { remove: [X-A] } }"),
                        p -> p.routes().get(0).upstream().headers().set(),
                        Map.of()),
                new Default(
                        "routes[].upstream.headers.remove",
                        PolicyFiles.MINIMAL.replace("/chat] }", "/chat], headers: { forward: [X-A] } }"),
                        p -> p.routes().get(0).upstream().headers().remove(),
                        List.of()),
                // routes[].origin
                route(
                        "routes[].origin.allow",
                        "    origin: { allowMissing: true }\n",
                        r -> r.origin().orElseThrow().allow(),
                        List.of()),
                route(
                        "routes[].origin.allowMissing",
                        "    origin: { allow: ['https://a.example'] }\n",
                        r -> r.origin().orElseThrow().allowMissing(),
                        false),
                // routes[].auth
                new Default(
                        "routes[].auth.clientCertificate",
                        PolicyFiles.MINIMAL.replace("    auth: none\n", JWT),
                        p -> p.routes().get(0).auth().clientCertificate(),
                        AuthPolicy.ClientCertificate.NONE),
                jwt("routes[].auth.jwt.issuer", j -> j.issuer(), Optional.empty()),
                jwt("routes[].auth.jwt.audience", j -> j.audience(), List.of()),
                jwt("routes[].auth.jwt.clockSkew", j -> j.clockSkew(), Duration.ofSeconds(30)),
                jwt("routes[].auth.jwt.tokenSources", j -> j.tokenSources(), List.of("header")),
                jwt("routes[].auth.jwt.require", j -> j.require(), Map.of()),
                jwt("routes[].auth.jwt.onExpiry", j -> j.onExpiry(), AuthPolicy.OnExpiry.CLOSE),
                jwt("routes[].auth.jwt.allowNoExpiry", j -> j.allowNoExpiry(), false),
                // routes[].limits
                route(
                        "routes[].limits.handshakes.perIp (no limits)",
                        "",
                        r -> r.limits().handshakesPerIp(),
                        Optional.empty()),
                route(
                        "routes[].limits.connections.perIp (no limits)",
                        "",
                        r -> r.limits().connectionsPerIp(),
                        Optional.empty()),
                route(
                        "routes[].limits.messages.perConnection (no limits)",
                        "",
                        r -> r.limits().messagesPerConnection(),
                        Optional.empty()),
                route(
                        "routes[].limits.bytes.perConnection (no limits)",
                        "",
                        r -> r.limits().bytesPerConnection(),
                        Optional.empty()),
                route(
                        "routes[].limits.onExceed (no limits)",
                        "",
                        r -> r.limits().onExceed(),
                        Action.CLOSE),
                route(
                        "routes[].limits.onExceed",
                        "    limits: { idleTimeout: 1m }\n",
                        r -> r.limits().onExceed(),
                        Action.CLOSE),
                route(
                        "routes[].limits.idleTimeout (no limits)",
                        "",
                        r -> r.limits().idleTimeout(),
                        Duration.ofMinutes(10)),
                route(
                        "routes[].limits.idleTimeout",
                        "    limits: { onExceed: drop }\n",
                        r -> r.limits().idleTimeout(),
                        Duration.ofMinutes(10)),
                route(
                        "routes[].limits.maxLifetime (no limits)",
                        "",
                        r -> r.limits().maxLifetime(),
                        Duration.ofHours(24)),
                route(
                        "routes[].limits.maxLifetime",
                        "    limits: { onExceed: drop }\n",
                        r -> r.limits().maxLifetime(),
                        Duration.ofHours(24)),
                route(
                        "routes[].limits.handshakes.perIp.burst",
                        "    limits: { handshakes: { perIp: { rate: 10/s } } }\n",
                        r -> r.limits().handshakesPerIp().orElseThrow().burst(),
                        10L),
                route(
                        "routes[].limits.bytes.perConnection.burst",
                        "    limits: { bytes: { perConnection: { rate: 1MiB/s } } }\n",
                        r -> r.limits().bytesPerConnection().orElseThrow().burst(),
                        1L << 20),
                // routes[].messages
                route(
                        "routes[].messages.direction (no messages)",
                        "",
                        r -> r.messages().direction(),
                        MessagePolicy.Direction.INBOUND),
                route(
                        "routes[].messages.direction",
                        "    messages: { binary: deny }\n",
                        r -> r.messages().direction(),
                        MessagePolicy.Direction.INBOUND),
                route(
                        "routes[].messages.maxSize (no messages)",
                        "",
                        r -> r.messages().maxSize(),
                        64L * 1024),
                route(
                        "routes[].messages.maxSize",
                        "    messages: { binary: deny }\n",
                        r -> r.messages().maxSize(),
                        64L * 1024),
                route(
                        "routes[].messages.binary (no messages)",
                        "",
                        r -> r.messages().binaryAllowed(),
                        true),
                route(
                        "routes[].messages.binary",
                        "    messages: { maxSize: 1KiB }\n",
                        r -> r.messages().binaryAllowed(),
                        true),
                route(
                        "routes[].messages.compression (no messages)",
                        "",
                        r -> r.messages().compressionAllowed(),
                        false),
                route(
                        "routes[].messages.compression",
                        "    messages: { maxSize: 1KiB }\n",
                        r -> r.messages().compressionAllowed(),
                        false),
                route(
                        "routes[].messages.json (no messages)",
                        "",
                        r -> r.messages().json(),
                        Optional.empty()),
                route(
                        "routes[].messages.sanitize (no messages)",
                        "",
                        r -> r.messages().sanitize(),
                        Optional.empty()),
                route(
                        "routes[].messages.deny (no messages)",
                        "",
                        r -> r.messages().deny(),
                        List.of()),
                route(
                        "routes[].messages.deny",
                        "    messages: { maxSize: 1KiB }\n",
                        r -> r.messages().deny(),
                        List.of()),
                route(
                        "routes[].messages.onViolation (no messages)",
                        "",
                        r -> r.messages().onViolation(),
                        Action.CLOSE),
                route(
                        "routes[].messages.onViolation",
                        "    messages: { maxSize: 1KiB }\n",
                        r -> r.messages().onViolation(),
                        Action.CLOSE),
                route(
                        "routes[].messages.maxFragments (no messages)",
                        "",
                        r -> r.messages().maxFragments(),
                        2048L),
                route(
                        "routes[].messages.maxFragments",
                        "    messages: { binary: deny }\n",
                        r -> r.messages().maxFragments(),
                        2048L),
                route(
                        "routes[].messages.maxFragments (maxSize 1MiB)",
                        "    messages: { maxSize: 1MiB }\n",
                        r -> r.messages().maxFragments(),
                        32_768L),
                route(
                        "routes[].messages.maxFragments (maxSize 1KiB)",
                        "    messages: { maxSize: 1KiB }\n",
                        r -> r.messages().maxFragments(),
                        1024L),
                route(
                        "routes[].messages.json.required",
                        "    messages: { json: { schema: s.json } }\n",
                        r -> r.messages().json().orElseThrow().required(),
                        false),
                route(
                        "routes[].messages.sanitize.html",
                        "    messages: { sanitize: { fields: ['$.text'] } }\n",
                        r -> r.messages().sanitize().orElseThrow().html(),
                        MessagePolicy.Html.STRIP),
                route(
                        "routes[].messages.sanitize.fields",
                        "    messages: { sanitize: { html: strip } }\n",
                        r -> r.messages().sanitize().orElseThrow().fields(),
                        List.of()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("defaults")
    void aKeyLeftOutTakesItsDocumentedDefault(Default d) throws IOException {
        // Files the policies refer to: only their existence is checked while binding.
        Files.writeString(dir.resolve("s.json"), "{\"type\": \"object\"}");
        Files.writeString(dir.resolve("server.crt"), "not read while binding");
        Files.writeString(dir.resolve("server.key"), "not read while binding");
        final Policy policy =
                SchemaChecked.load(PolicyFiles.write(dir, d.yaml()), Map.of()).policy();
        assertThat(d.actual().apply(policy)).isEqualTo(d.expected());
    }

    /** {@link PolicyFiles#MINIMAL} with root-level {@code sections} after its routes. */
    private static Default root(String key, String sections, Function<Policy, Object> actual, Object expected) {
        return new Default(key, PolicyFiles.MINIMAL + sections, actual, expected);
    }

    /** {@link PolicyFiles#MINIMAL} with {@code lines} added to its one route. */
    private static Default route(String key, String lines, Function<RoutePolicy, Object> actual, Object expected) {
        return new Default(
                key, PolicyFiles.MINIMAL + lines, p -> actual.apply(p.routes().get(0)), expected);
    }

    /** A route with the smallest {@code auth.jwt}: algorithms and a secret. */
    private static Default jwt(String key, Function<AuthPolicy.JwtPolicy, Object> actual, Object expected) {
        return new Default(
                key,
                PolicyFiles.MINIMAL.replace("    auth: none\n", JWT),
                p -> actual.apply(p.routes().get(0).auth().jwt().orElseThrow()),
                expected);
    }

    private static TlsPolicy tlsOf(Policy policy) {
        return policy.listeners().get(0).tls().orElseThrow();
    }

    /** The audit log's path relative to the policy file's directory, where relative paths start. */
    private static Object auditPathFromPolicyDir(Policy policy) {
        return policy.source()
                .toAbsolutePath()
                .normalize()
                .getParent()
                .relativize(policy.audit().path());
    }
}
