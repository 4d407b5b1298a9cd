package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.check.Mode;
import io.wsguard.testing.SchemaChecked;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PolicyLoaderTest {

    @TempDir
    Path dir;

    @Test
    void reportsEveryProblemInFileOrder() {
        final String yaml = """
                version: 1
                listeners:
                  - port: eighty
                    colour: blue
                routes:
                  - name: chat
                    match: { path: chat }
                    mode: loud
                    upstream: { targets: [http://x/] }
                """;
        assertThat(PolicyFiles.problemList(dir, yaml))
                .extracting(p -> p.line() + ":" + p.column() + ": " + p.message())
                .containsExactly(
                        "3:11: listeners[0].port: 'eighty' is not an integer (expected: 0..65535)",
                        "4:5: listeners[0].colour: unknown key (expected: one of port, host, tls, name)",
                        "6:5: routes[0]: missing required key 'auth' (expected: auth: none, or auth: {jwt: …})",
                        "7:20: routes[0].match.path: 'chat' does not start with / (expected: like /chat)",
                        "8:11: routes[0].mode: 'loud' is not allowed (expected: enforce or monitor)",
                        "9:27: routes[0].upstream.targets[0]: 'http://x/' is not a WebSocket URI"
                                + " (expected: ws://host:port/path or wss://…)");
    }

    @Test
    void exceptionMessageIsEveryProblemOnItsOwnLine() {
        final Path file = PolicyFiles.write(dir, "version: 3\nlisteners: []\nroutes: []\n");
        assertThatThrownBy(() -> SchemaChecked.load(file, Map.of()))
                .isInstanceOf(PolicyException.class)
                .hasMessage(file + ":1:10: version: '3' is not supported (expected: 1)\n"
                        + file + ":2:12: listeners: is empty (expected: at least one listener)\n"
                        + file + ":3:9: routes: is empty (expected: at least one route)");
    }

    @Test
    void missingFileIsAProblemToo() {
        final Path file = dir.resolve("nope.yaml");
        assertThatThrownBy(() -> SchemaChecked.load(file, Map.of()))
                .hasMessage(file + ":1:1: file not found: " + file.toAbsolutePath());
    }

    @Test
    void appliesEveryDefault() {
        final Policy policy = SchemaChecked.load(PolicyFiles.write(dir, PolicyFiles.MINIMAL), Map.of())
                .policy();

        assertThat(policy.version()).isEqualTo(1);
        assertThat(policy.source()).isEqualTo(dir.resolve("policy.yaml"));
        assertThat(policy.listeners())
                .containsExactly(new ListenerPolicy("ws-8080", "0.0.0.0", 8080, Optional.empty()));
        assertThat(policy.admin()).isEmpty();
        assertThat(policy.proxy())
                .isEqualTo(new ProxyPolicy(
                        List.of(),
                        100_000,
                        Duration.ofSeconds(10),
                        Duration.ofSeconds(30),
                        ProxyPolicy.PathMatching.NORMALIZED));
        assertThat(policy.audit())
                .isEqualTo(new AuditPolicy(
                        AuditPolicy.Sink.FILE, dir.resolve("logs/audit.jsonl"), 100L << 20, 10, 0, Optional.empty()));
        assertThat(policy.audit().linesPerClient()).hasToString("60/min");
        assertThat(policy.rateLimitStore())
                .isEqualTo(new RateLimitStorePolicy(RateLimitStorePolicy.Type.LOCAL, Optional.empty()));

        final RoutePolicy route = policy.routes().get(0);
        assertThat(route.name()).isEqualTo("chat");
        assertThat(route.match())
                .isEqualTo(new MatchPolicy(Optional.empty(), Optional.of("/chat"), Optional.empty(), List.of()));
        assertThat(route.mode()).isEqualTo(Mode.ENFORCE);
        assertThat(route.upstream())
                .isEqualTo(new UpstreamPolicy(
                        List.of(URI.create("ws://127.0.0.1:9000/chat")),
                        UpstreamPolicy.Balance.ROUND_ROBIN,
                        Duration.ofSeconds(5),
                        Optional.empty(),
                        new UpstreamPolicy.HeadersPolicy(List.of(), Map.of(), List.of())));
        assertThat(route.origin()).isEmpty();
        assertThat(route.auth()).isEqualTo(AuthPolicy.NONE);
        assertThat(route.limits())
                .isEqualTo(new LimitsPolicy(
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Action.CLOSE,
                        Duration.ofMinutes(10),
                        Duration.ofHours(24)));
        assertThat(route.messages())
                .isEqualTo(new MessagePolicy(
                        MessagePolicy.Direction.INBOUND,
                        64 * 1024,
                        true,
                        false,
                        Optional.empty(),
                        Optional.empty(),
                        List.of(),
                        Action.CLOSE));
    }

    @Test
    void appliesSectionDefaults() throws IOException {
        Files.writeString(dir.resolve("server.crt"), "dummy");
        Files.writeString(dir.resolve("server.key"), "dummy");
        Files.writeString(dir.resolve("ca.pem"), "dummy");
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL
                                                .replace(
                                                        "port: 8080",
                                                        "port: 8443\n    tls: { certificate: "
                                                                + "server.crt, privateKey: server.key }")
                                                .replace(
                                                        "ws://127.0.0.1:9000/chat",
                                                        "wss://up.example.com/chat], tls: { trustedCAs: ca.pem }, x: [")
                                                .replace(", x: [] }", " }")
                                        + "admin: {}\naudit: { path: out/audit.jsonl, linesPerClient: 10/s }\n"),
                        Map.of())
                .policy();

        assertThat(policy.admin()).contains(new AdminPolicy("127.0.0.1", 9090, Optional.empty()));
        assertThat(policy.audit().path()).isEqualTo(dir.resolve("out/audit.jsonl"));
        assertThat(policy.audit().linesPerClient()).isEqualTo(new Rate(10, Duration.ofSeconds(1)));
        assertThat(policy.listeners().get(0).tls())
                .contains(new TlsPolicy(
                        List.of(new TlsPolicy.KeyPairPolicy(dir.resolve("server.crt"), dir.resolve("server.key"))),
                        Optional.empty(),
                        Optional.empty(),
                        List.of("TLSv1.3", "TLSv1.2"),
                        TlsPolicy.ClientAuth.NONE,
                        Optional.empty()));
        assertThat(policy.routes().get(0).upstream().tls())
                .contains(new UpstreamPolicy.UpstreamTlsPolicy(Optional.of(dir.resolve("ca.pem")), true));
    }

    @Test
    void singlePairComesFirstThenTheSniCertificates() throws IOException {
        for (String name : List.of("a.crt", "a.key", "b.crt", "b.key")) {
            Files.writeString(dir.resolve(name), "dummy");
        }
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(dir, PolicyFiles.MINIMAL.replace("port: 8080", """
                port: 8443
                    tls:
                      certificate: a.crt
                      privateKey: a.key
                      certificates: [{ certificate: b.crt, privateKey: b.key }]""")), Map.of())
                .policy();

        assertThat(policy.listeners().get(0).tls().orElseThrow().certificates())
                .containsExactly(
                        new TlsPolicy.KeyPairPolicy(dir.resolve("a.crt"), dir.resolve("a.key")),
                        new TlsPolicy.KeyPairPolicy(dir.resolve("b.crt"), dir.resolve("b.key")));
    }

    @Test
    void substitutesSetVariablesAndDefaults() {
        final String yaml = PolicyFiles.MINIMAL
                        .replace("port: 8080", "port: ${PORT}")
                        .replace("name: chat", "name: ${ROUTE:-chat}-v${VERSION:-1}")
                + "admin: { token: '${ADMIN_TOKEN}', port: '${ADMIN_PORT:-9191}' }\n";
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(dir, yaml), Map.of("PORT", "8081", "VERSION", "2", "ADMIN_TOKEN", "s3cret"))
                .policy();

        assertThat(policy.listeners().get(0).port()).isEqualTo(8081);
        assertThat(policy.routes().get(0).name()).isEqualTo("chat-v2");
        assertThat(policy.admin().orElseThrow().port()).isEqualTo(9191);
        assertThat(policy.admin().orElseThrow().token()).contains(new Secret("s3cret"));
    }

    @Test
    void emptyDefaultMeansNoAdminToken() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(dir, PolicyFiles.MINIMAL + "admin:\n  token: ${WSGUARD_ADMIN_TOKEN:-}\n"),
                        Map.of())
                .policy();
        assertThat(policy.admin().orElseThrow().token()).isEmpty();
    }

    @Test
    void unsetVariableWithoutDefaultIsAnErrorAtItsScalar() {
        assertThat(PolicyFiles.problems(dir, PolicyFiles.MINIMAL.replace("port: 8080", "port: ${PORT}"), Map.of()))
                .endsWith("policy.yaml:3:11: listeners[0].port: environment variable PORT is not set"
                        + " (expected: set it, or give a default: ${PORT:-default})");
    }

    @Test
    void aVariableCannotInjectYamlStructure() {
        final String injected = "x\nport: 1\nhost: 0.0.0.0\n  - evil: {";
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(dir, PolicyFiles.MINIMAL + "admin: { token: '${ADMIN_TOKEN}' }\n"),
                        Map.of("ADMIN_TOKEN", injected))
                .policy();

        assertThat(policy.admin().orElseThrow().token()).contains(new Secret(injected));
        assertThat(policy.admin().orElseThrow().port()).isEqualTo(9090);
        assertThat(policy.admin().orElseThrow().host()).isEqualTo("127.0.0.1");
    }

    @Test
    void aSubstitutedValueIsNotSubstitutedAgain() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(dir, PolicyFiles.MINIMAL + "admin: { token: '${A}' }\n"),
                        Map.of("A", "${B}", "B", "nope"))
                .policy();
        assertThat(policy.admin().orElseThrow().token()).contains(new Secret("${B}"));
    }

    @Test
    void jwtClaimReferencesAreLeftForTheProxy() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL.replace(
                                        "chat] }", "chat], headers: { set: { X-Env: '${STAGE:-dev}' } } }")),
                        Map.of())
                .policy();
        assertThat(policy.routes().get(0).upstream().headers().set()).containsEntry("X-Env", "dev");
    }

    @Test
    void problemsNeverHoldSecretValues() {
        final String problems = PolicyFiles.problems(
                dir,
                PolicyFiles.MINIMAL.replace("port: 8080", "port: 8443\n    tls: { keyStorePassword: '${KS}' }")
                        + "rateLimitStore: { redis: { uri: '${REDIS}' } }\n",
                Map.of("KS", "hunter2", "REDIS", "http://user:hunter3@redis"));
        assertThat(problems)
                .contains("keyStorePassword: no keyStore uses it", "rateLimitStore.redis.uri: is not a Redis URI")
                .doesNotContain("hunter2", "hunter3");
    }

    @Test
    void jwtAuthIsAccepted() {
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL.replace(
                                "auth: none", "auth: { jwt: { algorithms: [HS256], secret: '${JWT_SECRET}' } }"),
                        Map.of("JWT_SECRET", "x".repeat(32))))
                .isEmpty();
    }

    @Test
    void messageRulesAreValidatedAndAccepted() throws IOException {
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL + "    messages: { sanitize: { html: strip, fields: [text] } }\n",
                        Map.of()))
                .contains("routes[0].messages.sanitize.fields[0]: 'text' is not a JSON path");
        Files.writeString(dir.resolve("s.json"), "{\"type\": \"object\"}");
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL + "    messages: { json: { required: true, schema: s.json },"
                                + " sanitize: { html: strip }, deny: [ { name: script, pattern: '(?i)<script' } ] }\n",
                        Map.of()))
                .isEmpty();
    }

    @Test
    void originEntriesAreValidated() {
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL + "    origin: { allow: [chat.example.com], allowMissing: maybe }\n",
                        Map.of()))
                .contains("9:23: routes[0].origin.allow[0]: 'chat.example.com' is not an origin")
                .contains("9:56: routes[0].origin.allowMissing: 'maybe' is not a boolean")
                .doesNotContain("not enforced");
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL
                                + "    origin: { allow: ['https://chat.example.com/', 'https://a.com.', "
                                + "'wss://a.com', 'https://*.[::1]', 'https://u@a.com',\n"
                                + "      'https://*.example.com', 'http://[::1]:3000', "
                                + "'https://A.Example.com:8443'] }\n",
                        Map.of()))
                .contains(
                        "routes[0].origin.allow[0]: 'https://chat.example.com/' is not an origin",
                        "routes[0].origin.allow[1]: 'https://a.com.' is not an origin",
                        "routes[0].origin.allow[2]: 'wss://a.com' is not an origin",
                        "routes[0].origin.allow[3]: 'https://*.[::1]' is not an origin",
                        "routes[0].origin.allow[4]: 'https://u@a.com' is not an origin")
                .doesNotContain("allow[5]", "allow[6]", "allow[7]");
    }

    @Test
    void limitsOfHandshakesAndConnectionsAreAccepted() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL
                                        + "    origin: { allow: ['https://*.example.com'] }\n"
                                        + "    limits: { handshakes: { perIp: { rate: 10/s, "
                                        + "burst: 20 } }, connections: { perIp: 50 } }\n"),
                        Map.of())
                .policy();
        assertThat(policy.routes().get(0).limits().connectionsPerIp()).hasValue(50);
        assertThat(policy.routes().get(0).origin()).isPresent();
    }

    @Test
    void messageLimitsAreAccepted() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL.replace(
                                                "auth: none",
                                                "auth: { jwt: { algorithms: [HS256], secret: '${JWT_SECRET}' } }")
                                        + "    limits: { messages: { perConnection: { rate: "
                                        + "50/s, burst: 100 }, perSubject: { rate: 200/s } },\n"
                                        + "              bytes: { perConnection: { rate: "
                                        + "1MiB/s, burst: 2MiB } }, onExceed: drop }\n"
                                        + "    messages: { binary: deny, maxSize: 1MiB }\n"),
                        Map.of("JWT_SECRET", "x".repeat(32)))
                .policy();
        final LimitsPolicy limits = policy.routes().get(0).limits();
        assertThat(limits.messagesPerConnection().orElseThrow().burst()).isEqualTo(100);
        assertThat(limits.messagesPerSubject().orElseThrow().burst()).isEqualTo(200);
        assertThat(limits.bytesPerConnection().orElseThrow().burst()).isEqualTo(2 * 1024 * 1024);
        assertThat(limits.onExceed()).isEqualTo(Action.DROP);
        assertThat(policy.routes().get(0).messages().binaryAllowed()).isFalse();
    }

    @Test
    void limitsThatCouldNeverWorkAreContradictions() {
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL
                                + "    limits: { messages: { perSubject: { rate: "
                                + "5/s } }, connections: { perSubject: 2 } }\n",
                        Map.of()))
                .contains("routes[0].limits.messages.perSubject: limits messages "
                        + "per token subject but the route has no auth.jwt")
                .contains("routes[0].limits.connections.perSubject: limits "
                        + "connections per token subject but the route has no auth.jwt");
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL
                                + "    limits: { bytes: { perConnection: { rate: 1MiB/s, burst: 32KiB } } }\n",
                        Map.of()))
                .contains("routes[0].limits.bytes.perConnection: burst of 32768 "
                        + "bytes is smaller than messages.maxSize (65536 bytes)");
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL
                                + "    limits: { bytes: { perConnection: { rate: 1GiB/s, burst: "
                                + "2GiB } }, messages: { perConnection: { rate: 2000000000/s } } }\n",
                        Map.of()))
                .contains("routes[0].limits.bytes.perConnection.rate: '1GiB/s' is "
                        + "faster than wsguard can meter (expected: at most 953MiB/s)")
                .contains("routes[0].limits.messages.perConnection.rate: "
                        + "'2000000000/s' is faster than wsguard can meter");
    }

    @Test
    void enforcedValuesOfTheSameKeysAreAccepted() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL
                                        + "    messages: { binary: allow }\nrateLimitStore: { type: local }\n"),
                        Map.of())
                .policy();
        assertThat(policy.routes().get(0).messages().binaryAllowed()).isTrue();
    }

    @Test
    void locationsPointAtValuesAndFallBackToAncestors() {
        final LoadedPolicy loaded = SchemaChecked.load(PolicyFiles.write(dir, PolicyFiles.MINIMAL), Map.of());
        final PolicyLocations locations = loaded.locations();

        assertThat(locations.find("routes[0].upstream.targets[0]")).contains(new PolicyLocations.Location(7, 27));
        assertThat(locations.find("listeners[0].port")).contains(new PolicyLocations.Location(3, 11));
        assertThat(locations.at("routes[0].upstream.connectTimeout", "too slow"))
                .hasToString(dir.resolve("policy.yaml") + ":7:5: routes[0].upstream.connectTimeout: too slow");
        assertThat(locations.at("nowhere.at.all", "x").line()).isEqualTo(1);
        assertThat(locations.at("nowhere.at.all", "x").column()).isEqualTo(1);
    }

    @Test
    void refusesAliasBombs() {
        final StringBuilder yaml = new StringBuilder(PolicyFiles.MINIMAL)
                .append("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (int i = 1; i < 10; i++) {
            yaml.append("x").append(i).append(": &a").append(i).append(" [");
            for (int j = 0; j < 9; j++) {
                yaml.append(j == 0 ? "" : ", ").append("*a").append(i - 1);
            }
            yaml.append("]\n");
        }
        assertThatThrownBy(() -> SchemaChecked.load(PolicyFiles.write(dir, yaml.toString()), Map.of()))
                .isInstanceOf(PolicyException.class)
                .hasMessageContaining("Number of aliases for non-scalar nodes exceeds the specified max=50");
    }

    @Test
    void refusesFilesOverOneMebibyte() throws IOException {
        final Path file = PolicyFiles.write(dir, PolicyFiles.MINIMAL + "#" + "x".repeat(1 << 20) + "\n");
        assertThatThrownBy(() -> SchemaChecked.load(file, Map.of()))
                .hasMessage(file + ":1:1: the file is larger than 1 MiB (expected: a policy of a few KiB)");
    }
}
