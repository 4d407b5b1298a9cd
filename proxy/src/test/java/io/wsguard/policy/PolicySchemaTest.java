package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import com.networknt.schema.Error;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import io.wsguard.testing.SchemaChecked;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * {@code schema/wsguard-policy.schema.json} and the binders cannot drift apart: the schema has, at
 * each map, exactly the keys the binder knows there; it accepts the example policies and a policy
 * with every key; and it refuses what the binder refuses in a table of broken policies. (Every
 * policy another test loads is checked against it too, through {@link SchemaChecked}.)
 *
 * <p>A new key: its binder's list of known keys, then an entry at the same place in the schema (a
 * description, the type, the default), the key in {@code every-key.yaml} (a new map: with all its
 * keys), and a row in {@code docs/policy.md} named by its path ({@code `audit.syslog.address`}).
 * Each of these tests names the path that is missing.
 */
class PolicySchemaTest {

    /** Surefire runs in {@code proxy/}. */
    static final Path SCHEMA_FILE = Path.of("../schema/wsguard-policy.schema.json");

    private static final Path POLICIES = Path.of("../policies");
    private static final Path DOCS = Path.of("../docs/policy.md");
    private static final String SCHEMA_LINE = "# yaml-language-server: $schema=../schema/wsguard-policy.schema.json";
    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** A key no binder knows: added to each map, the binder's refusal names the keys it knows there. */
    private static final String UNKNOWN = "zzNoSuchKey";

    private static final Pattern KNOWN_KEYS = Pattern.compile(": unknown key \\(expected: one of ([^)]*)\\)$");

    @TempDir
    Path dir;

    private String everyKey;

    @BeforeEach
    void writeTheFilesThatEveryKeyNames() throws IOException {
        try (InputStream in = PolicySchemaTest.class.getResourceAsStream("every-key.yaml")) {
            everyKey = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        final Matcher files = Pattern.compile("files/[A-Za-z0-9_.-]+").matcher(everyKey);
        while (files.find()) {
            final Path file = dir.resolve(files.group());
            Files.createDirectories(file.getParent());
            Files.writeString(file, "");
        }
    }

    @Test
    void theJarCarriesTheSchemaAtTheRepositoryRoot() throws IOException {
        assertThat(PolicySchema.text()).isEqualTo(Files.readString(SCHEMA_FILE));
    }

    @Test
    void theSchemaIsValidAgainstTheDraft202012MetaSchema() throws IOException {
        final List<Error> errors = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12)
                .getSchema(SchemaLocation.of("https://json-schema.org/draft/2020-12/schema"))
                .validate(JSON.readTree(PolicySchema.text()));
        assertThat(errors).isEmpty();
    }

    static Stream<String> examples() throws IOException {
        try (Stream<Path> files = Files.list(POLICIES)) {
            return files
                    .map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".yaml"))
                    .sorted()
                    .toList()
                    .stream();
        }
    }

    /** ExamplePoliciesTest loads each one; the editor finds the schema through its first line. */
    @ParameterizedTest
    @MethodSource("examples")
    void everyExamplePolicyNamesTheSchemaAndValidates(String name) throws IOException {
        final String text = Files.readString(POLICIES.resolve(name));
        assertThat(text.lines().findFirst()).hasValue(SCHEMA_LINE);
        assertThat(SchemaChecked.errors(text)).as(name).isEmpty();
    }

    @Test
    void thePolicyWithEveryKeyLoadsAndValidates() {
        assertThat(PolicyFiles.problems(dir, everyKey, Map.of())).isEmpty();
        assertThat(SchemaChecked.errors(everyKey)).isEmpty();
    }

    /**
     * The strongest guard: for every map the schema closes ({@code additionalProperties: false}), the
     * keys it lists are the keys the binder knows at that place, read from the binder's own refusal
     * of an unknown key there. A key a binder learns without a schema entry fails here, by its path.
     */
    @Test
    void everyMapOfTheSchemaHasExactlyTheKeysTheBinderKnowsThere() throws IOException {
        final JsonNode schema = JSON.readTree(PolicySchema.text());
        final Map<String, Set<String>> places = new TreeMap<>();
        walk(schema, schema, "", places, new TreeSet<>());
        assertThat(places).containsKeys("", "listeners[0].tls", "routes[0].auth.jwt", "routes[0].messages.json");

        final JsonNode every = SchemaChecked.tree(everyKey);
        final List<String> drift = new ArrayList<>();
        for (Map.Entry<String, Set<String>> place : places.entrySet()) {
            final String at = place.getKey().isEmpty() ? "(the top level)" : place.getKey();
            final JsonNode copy = every.deepCopy();
            if (!(find(copy, place.getKey()) instanceof ObjectNode map)) {
                drift.add(at + ": every-key.yaml has no map here (expected: the section, with its keys)");
                continue;
            }
            map.put(UNKNOWN, "x");
            final Set<String> known = knownKeys(JSON.writeValueAsString(copy), place.getKey());
            if (known == null) {
                drift.add(at + ": the binder took an unknown key here (expected: additionalProperties false"
                        + " only where the binder refuses unknown keys)");
                continue;
            }
            final Set<String> missing = new TreeSet<>(known);
            missing.removeAll(place.getValue());
            final Set<String> extra = new TreeSet<>(place.getValue());
            extra.removeAll(known);
            missing.forEach(key ->
                    drift.add(join(place.getKey(), key) + ": the binder knows it, the schema has no entry for it"));
            extra.forEach(key ->
                    drift.add(join(place.getKey(), key) + ": the schema has it, the binder refuses it as unknown"));
        }
        assertThat(drift)
                .as("schema/wsguard-policy.schema.json and the binders differ (add each key to the schema"
                        + " and to docs/policy.md)")
                .isEmpty();
    }

    static Stream<Arguments> brokenPolicies() {
        final String minimal = PolicyFiles.MINIMAL;
        final String route = "    auth: none\n";
        return Stream.of(
                broken("unknown top-level key", minimal + "colour: blue\n", "colour"),
                broken("syslog sink without audit.syslog", minimal + "audit: { sink: syslog }\n", "audit.sink"),
                broken(
                        "syslog address of another scheme",
                        minimal + "audit: { sink: syslog, syslog: { address: \"http://siem:514\" } }\n",
                        "audit.syslog.address"),
                broken("unknown route key", minimal + "    timeout: 5s\n", "routes[0].timeout"),
                broken(
                        "unknown key in a rate",
                        minimal + "    limits: { handshakes: { perIp: { rate: 1/s, per: ip } } }\n",
                        "routes[0].limits.handshakes.perIp.per"),
                broken("version 2", minimal.replace("version: 1", "version: 2"), "version"),
                broken("no version", minimal.replace("version: 1\n", ""), "missing required key 'version'"),
                broken("no routes", "version: 1\nlisteners: [{ port: 8080 }]\n", "missing required key 'routes'"),
                broken("no auth", minimal.replace(route, ""), "missing required key 'auth'"),
                broken(
                        "listener without port",
                        minimal.replace("- port: 8080", "- host: 127.0.0.1"),
                        "missing required key 'port'"),
                broken(
                        "listeners as a map",
                        minimal.replace("listeners:\n  - port: 8080", "listeners: { port: 8080 }"),
                        "listeners: got a map"),
                broken(
                        "no listeners",
                        minimal.replace("listeners:\n  - port: 8080", "listeners: []"),
                        "listeners: is empty"),
                broken("port as a word", minimal.replace("port: 8080", "port: http"), "listeners[0].port"),
                broken("port out of range", minimal.replace("port: 8080", "port: 70000"), "listeners[0].port"),
                broken(
                        "bad listener name",
                        minimal.replace("- port: 8080", "- { port: 8080, name: 'a b' }"),
                        "listeners[0].name"),
                broken("bad mode", minimal + "    mode: block\n", "routes[0].mode"),
                broken(
                        "bad balance",
                        minimal.replace("chat] }", "chat], balance: random }"),
                        "routes[0].upstream.balance"),
                broken(
                        "duration without unit",
                        minimal.replace("chat] }", "chat], connectTimeout: 5 }"),
                        "routes[0].upstream.connectTimeout"),
                broken(
                        "duration in words",
                        minimal + "    limits: { idleTimeout: 10sec }\n",
                        "routes[0].limits.idleTimeout"),
                broken("fractional duration", minimal + "proxy: { drainTimeout: 1.5s }\n", "proxy.drainTimeout"),
                broken("zero timeout", minimal + "proxy: { handshakeTimeout: 0s }\n", "proxy.handshakeTimeout"),
                broken("size in KB", minimal + "    messages: { maxSize: 64KB }\n", "routes[0].messages.maxSize"),
                broken(
                        "rate per sec",
                        minimal + "    limits: { messages: { perConnection: { rate: 50/sec } } }\n",
                        "routes[0].limits.messages.perConnection.rate"),
                broken(
                        "zero rate",
                        minimal + "    limits: { handshakes: { perIp: { rate: 0/s } } }\n",
                        "routes[0].limits.handshakes.perIp.rate"),
                broken(
                        "byte rate for messages",
                        minimal + "    limits: { messages: { perConnection: { rate: 1MiB/s } } }\n",
                        "routes[0].limits.messages.perConnection.rate"),
                broken(
                        "rate without rate",
                        minimal + "    limits: { handshakes: { perIp: { burst: 5 } } }\n",
                        "missing required key 'rate'"),
                broken(
                        "zero connections",
                        minimal + "    limits: { connections: { perIp: 0 } }\n",
                        "routes[0].limits.connections.perIp"),
                broken(
                        "boolean as yes",
                        minimal + "    origin: { allowMissing: yes }\n",
                        "routes[0].origin.allowMissing"),
                broken("bad audit sink", minimal + "audit: { sink: kafka }\n", "audit.sink"),
                broken("no rotated files", minimal + "audit: { maxFiles: 0 }\n", "audit.maxFiles"),
                broken("lines as a byte rate", minimal + "audit: { linesPerClient: 1MiB/s }\n", "audit.linesPerClient"),
                broken("bad path matching", minimal + "proxy: { pathMatching: loose }\n", "proxy.pathMatching"),
                broken("zero max connections", minimal + "proxy: { maxConnections: 0 }\n", "proxy.maxConnections"),
                broken(
                        "trusted proxy host name",
                        minimal + "proxy: { trustedProxies: [lb.internal] }\n",
                        "proxy.trustedProxies[0]"),
                broken("admin port as a word", minimal + "admin: { port: admin }\n", "admin.port"),
                broken("probes as a port number", minimal + "admin: { probes: 9091 }\n", "admin.probes"),
                broken("probes port as a word", minimal + "admin: { probes: { port: probes } }\n", "admin.probes.port"),
                broken(
                        "probes with a path",
                        minimal + "admin: { probes: { port: 9091, path: /healthz } }\n",
                        "admin.probes.path"),
                broken(
                        "redis store without redis",
                        minimal + "rateLimitStore: { type: redis }\n",
                        "type redis needs redis"),
                broken("bad store type", minimal + "rateLimitStore: { type: memcached }\n", "rateLimitStore.type"),
                broken(
                        "redis over http",
                        minimal + "rateLimitStore: { type: redis, redis: { uri: 'http://r:6379' } }\n",
                        "rateLimitStore.redis.uri"),
                broken(
                        "both path and prefix",
                        minimal.replace("{ path: /chat }", "{ path: /chat, pathPrefix: /c/ }"),
                        "both path and pathPrefix"),
                broken(
                        "neither path nor prefix",
                        minimal.replace("{ path: /chat }", "{ host: a.example }"),
                        "neither path nor pathPrefix"),
                broken("relative path", minimal.replace("{ path: /chat }", "{ path: chat }"), "routes[0].match.path"),
                broken("bad route name", minimal.replace("name: chat", "name: chat room"), "routes[0].name"),
                broken(
                        "http target",
                        minimal.replace("ws://127.0.0.1:9000/chat", "http://127.0.0.1:9000/chat"),
                        "routes[0].upstream.targets[0]"),
                broken("no targets", minimal.replace("[ws://127.0.0.1:9000/chat]", "[]"), "routes[0].upstream.targets"),
                broken(
                        "bad header name",
                        minimal.replace("chat] }", "chat], headers: { remove: ['X Y'] } }"),
                        "routes[0].upstream.headers.remove[0]"),
                broken("auth basic", minimal.replace("auth: none", "auth: basic"), "routes[0].auth"),
                broken(
                        "jwt without key source",
                        minimal.replace("auth: none", "auth: { jwt: { algorithms: [RS256] } }"),
                        "no key source"),
                broken(
                        "jwt with two key sources",
                        minimal.replace(
                                "auth: none",
                                "auth: { jwt: { algorithms: [HS256], secret: '${S:-"
                                        + "0123456789abcdef0123456789abcdef}', jwksUri: 'https://id.example/jwks' } }"),
                        "a second key source"),
                broken(
                        "jwt algorithm none",
                        minimal.replace(
                                "auth: none", "auth: { jwt: { algorithms: [none], jwksUri: 'https://i.example/k' } }"),
                        "routes[0].auth.jwt.algorithms[0]"),
                broken(
                        "jwt without algorithms",
                        minimal.replace("auth: none", "auth: { jwt: { jwksUri: 'https://i.example/k' } }"),
                        "missing required key 'algorithms'"),
                broken(
                        "jwks over http",
                        minimal.replace(
                                "auth: none", "auth: { jwt: { algorithms: [RS256], jwksUri: 'http://i.example/k' } }"),
                        "routes[0].auth.jwt.jwksUri"),
                broken(
                        "bad token source",
                        minimal.replace(
                                "auth: none",
                                "auth: { jwt: { algorithms: [RS256], jwksUri: 'https://i.example/k',"
                                        + " tokenSources: [bearer] } }"),
                        "routes[0].auth.jwt.tokenSources[0]"),
                broken(
                        "bad client certificate",
                        minimal.replace("auth: none", "auth: { clientCertificate: optional }"),
                        "routes[0].auth.clientCertificate"),
                broken(
                        "json with nothing to check",
                        minimal + "    messages: { json: { required: false } }\n",
                        "no schema"),
                broken(
                        "bad sanitize mode",
                        minimal + "    messages: { sanitize: { html: escape } }\n",
                        "routes[0].messages.sanitize.html"),
                broken(
                        "sanitize field not a path",
                        minimal + "    messages: { sanitize: { fields: [text] } }\n",
                        "routes[0].messages.sanitize.fields[0]"),
                broken(
                        "deny rule without pattern",
                        minimal + "    messages: { deny: [{ name: x }] }\n",
                        "missing required key 'pattern'"),
                broken(
                        "bad direction",
                        minimal + "    messages: { direction: outbound }\n",
                        "routes[0].messages.direction"),
                broken(
                        "zero fragments",
                        minimal + "    messages: { maxFragments: 0 }\n",
                        "routes[0].messages.maxFragments"),
                broken(
                        "tls certificate without key",
                        minimal.replace("- port: 8080", "- { port: 8080, tls: { certificate: files/a.crt } }"),
                        "certificate and privateKey go together"),
                broken(
                        "tls without key material",
                        minimal.replace("- port: 8080", "- { port: 8080, tls: {} }"),
                        "no key material"),
                broken(
                        "client auth without CAs",
                        minimal.replace(
                                "- port: 8080",
                                "- { port: 8080, tls: { keyStore: files/a.p12,"
                                        + " keyStorePassword: '${P:-x}', clientAuth: required } }"),
                        "required needs clientCAs"),
                broken(
                        "old TLS",
                        minimal.replace(
                                "- port: 8080",
                                "- { port: 8080, tls: { keyStore: files/a.p12,"
                                        + " keyStorePassword: '${P:-x}', protocols: [TLSv1.1] } }"),
                        "listeners[0].tls.protocols[0]"));
    }

    private static Arguments broken(String what, String yaml, String binderSays) {
        return Arguments.of(what, yaml, binderSays);
    }

    /** Both refuse it: the binder with a problem that says {@code binderSays}, the schema with an error. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("brokenPolicies")
    void bothTheBinderAndTheSchemaRefuse(String what, String yaml, String binderSays) throws IOException {
        Files.createDirectories(dir.resolve("files"));
        Files.writeString(dir.resolve("files/a.crt"), "");
        Files.writeString(dir.resolve("files/a.p12"), "");
        assertThat(PolicyFiles.problems(dir, yaml, Map.of())).as("the binder").contains(binderSays);
        assertThat(SchemaChecked.errors(yaml)).as("the schema").isNotEmpty();
    }

    /** docs/policy.md is the reference: each key of the schema has its row there, by its path. */
    @Test
    void docsPolicyMdNamesEveryKeyOfTheSchema() throws IOException {
        final JsonNode schema = JSON.readTree(PolicySchema.text());
        final Set<String> keys = new TreeSet<>();
        walk(schema, schema, "", new TreeMap<>(), keys);
        assertThat(keys)
                .contains("version", "routes[].auth.jwt.clockSkew", "listeners[].tls.certificates[].certificate");

        final String docs = Files.readString(DOCS);
        assertThat(keys.stream().filter(key -> !docs.contains("`" + key + "`")))
                .as("keys of the schema without a row in docs/policy.md")
                .isEmpty();
    }

    /** The whole policies that README.md and docs/policy.md show are valid policies. */
    @ParameterizedTest
    @MethodSource("documentedPolicies")
    void everyWholePolicyInTheDocumentationValidates(String where, String yaml) {
        assertThat(SchemaChecked.errors(yaml)).as(where).isEmpty();
    }

    static Stream<Arguments> documentedPolicies() throws IOException {
        final List<Arguments> policies = new ArrayList<>();
        for (Path file : List.of(Path.of("../README.md"), DOCS)) {
            final Matcher block =
                    Pattern.compile("```yaml\\n(.*?)```", Pattern.DOTALL).matcher(Files.readString(file));
            while (block.find()) {
                if (block.group(1).lines().anyMatch("version: 1"::equals)) {
                    policies.add(Arguments.of(file + " at offset " + block.start(), block.group(1)));
                }
            }
        }
        assertThat(policies).hasSizeGreaterThanOrEqualTo(2);
        return policies.stream();
    }

    /** The keys the binder lists in its refusal of {@link #UNKNOWN} at {@code place}; null when it took it. */
    private Set<String> knownKeys(String policy, String place) {
        final String key = join(place, UNKNOWN);
        for (String line : PolicyFiles.problems(dir, policy, Map.of()).lines().toList()) {
            final Matcher m = KNOWN_KEYS.matcher(line);
            if (line.contains(": " + key + ": unknown key") && m.find()) {
                return new TreeSet<>(List.of(m.group(1).split(", ", -1)));
            }
        }
        return null;
    }

    /**
     * Every map the schema closes, by the binder's path to it ({@code routes[0].auth.jwt}), with the
     * keys the schema lists there, into {@code places}; every key's path ({@code routes[].auth.jwt.issuer})
     * into {@code keys}. Follows {@code $ref}, the branches of anyOf, oneOf and allOf, properties, and
     * array items (as item 0).
     */
    private static void walk(
            JsonNode root, JsonNode node, String path, Map<String, Set<String>> places, Set<String> keys) {
        if (node.has("$ref")) {
            walk(root, root.at(node.get("$ref").stringValue().substring(1)), path, places, keys);
        }
        for (String combinator : List.of("anyOf", "oneOf", "allOf")) {
            for (JsonNode branch : node.path(combinator)) {
                walk(root, branch, path, places, keys);
            }
        }
        final JsonNode properties = node.path("properties");
        if (properties.isObject()
                && node.path("additionalProperties").isBoolean()
                && !node.get("additionalProperties").booleanValue()) {
            places.computeIfAbsent(path, p -> new TreeSet<>()).addAll(properties.propertyNames());
        }
        for (Map.Entry<String, JsonNode> property : properties.properties()) {
            final String child = join(path, property.getKey());
            keys.add(child.replace("[0]", "[]"));
            walk(root, property.getValue(), child, places, keys);
        }
        if (node.has("items")) {
            walk(root, node.get("items"), path + "[0]", places, keys);
        }
    }

    private static final Pattern SEGMENT = Pattern.compile("([^.\\[]+)((?:\\[\\d+])*)");

    /** The node at a binder path like {@code listeners[0].tls.certificates[0]}; a missing node when absent. */
    private static JsonNode find(JsonNode root, String path) {
        JsonNode node = root;
        if (path.isEmpty()) {
            return node;
        }
        for (String segment : path.split("\\.", -1)) {
            final Matcher m = SEGMENT.matcher(segment);
            if (!m.matches()) {
                throw new IllegalArgumentException(segment);
            }
            node = node.path(m.group(1));
            final Matcher index = Pattern.compile("\\[(\\d+)]").matcher(m.group(2));
            while (index.find()) {
                node = node.path(Integer.parseInt(index.group(1)));
            }
        }
        return node;
    }

    private static String join(String path, String key) {
        return path.isEmpty() ? key : path + "." + key;
    }
}
