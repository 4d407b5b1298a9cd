package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Each broken policy gives one exact, located message. */
class BrokenPolicyTest {

    @TempDir
    Path dir;

    static Stream<Arguments> brokenPolicies() {
        final String listener = "version: 1\nlisteners:\n  - port: 8080\n";
        final String route = """
                routes:
                  - name: chat
                    match: { path: /chat }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: none
                """;
        return Stream.of(
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("version: 1", "version: 2"),
                        "1:10: version: '2' is not supported (expected: 1)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("version: 1\n", ""),
                        "1:1: missing required key 'version' (expected: version: 1)"),
                Arguments.of(
                        "version: 1\nlisteners: {port: 8080}\n" + route,
                        "2:12: listeners: got a map (expected: a list of listeners)"),
                Arguments.of(
                        "version: 1\nlisteners: []\n" + route,
                        "2:12: listeners: is empty (expected: at least one listener)"),
                Arguments.of(listener + "routes: []\n", "4:9: routes: is empty (expected: at least one route)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("port: 8080", "port: http"),
                        "3:11: listeners[0].port: 'http' is not an integer (expected: 0..65535)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("port: 8080", "port: 70000"),
                        "3:11: listeners[0].port: 70000 is out of range (expected: 0..65535)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("port: 8080", "prot: 8080"),
                        "3:5: listeners[0].prot: unknown key (expected: one of port, host, tls, name)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("    auth: none", "    auth: none\n    name: chat2"),
                        "9:5: routes[0].name: duplicate key, first at 5:5 (expected: each key once)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("    auth: none", "    auth: none\n    mode: block"),
                        "9:11: routes[0].mode: 'block' is not allowed (expected: enforce or monitor)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("chat] }", "chat], balance: random }"),
                        "7:63: routes[0].upstream.balance: 'random' is not "
                                + "allowed (expected: round-robin or least-connections)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("chat] }", "chat], connectTimeout: 5 }"),
                        "7:70: routes[0].upstream.connectTimeout: '5' is "
                                + "not a duration (expected: like 250ms, 30s, 5m, 12h)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "    messages: { maxSize: 2GiB }\n",
                        "9:26: routes[0].messages.maxSize: '2GiB' is out of range (expected: 1..1GiB)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + """
                            limits:
                              messages:
                                perConnection: { rate: 50/sec }
                        """,
                        "11:32: routes[0].limits.messages.perConnection.rate: '50/sec' is not a rate"
                                + " (expected: like 50/s, 3000/min, 10/h or 1MiB/s)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("    auth: none\n", ""),
                        "5:5: routes[0]: missing required key 'auth' (expected: auth: none, or auth: {jwt: …})"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("auth: none", "auth: jwt"),
                        "8:11: routes[0].auth: 'jwt' is not allowed (expected: none, or a map with jwt)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("{ path: /chat }", "{ path: /chat, pathPrefix: /c/ }"),
                        "6:12: routes[0].match: both path and pathPrefix (expected: exactly one of them)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("{ path: /chat }", "{ path: chat }"),
                        "6:20: routes[0].match.path: 'chat' does not start with / (expected: like /chat)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("{ path: /chat }", "{ host: 'a.*.example.com', path: /chat }"),
                        "6:20: routes[0].match.host: 'a.*.example.com' is not "
                                + "a host (expected: chat.example.com or *.example.com)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + route.replace("routes:\n", ""),
                        "9:11: routes[1].name: 'chat' is already the name of another route (expected: unique names)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("name: chat", "name: my chat"),
                        "5:11: routes[0].name: 'my chat' is not a route "
                                + "name (expected: letters, digits, '_', '.', '-')"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("ws://127.0.0.1:9000/chat", "http://127.0.0.1:9000/chat"),
                        "7:27: routes[0].upstream.targets[0]: 'http://127.0.0.1:9000/chat' is not a WebSocket URI"
                                + " (expected: ws://host:port/path or wss://…)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("chat] }", "chat], tls: { verifyHostname: false } }"),
                        "7:54: routes[0].upstream.tls: no wss:// target "
                                + "uses it (expected: a wss:// target, or remove tls)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("port: 8080", "port: 8443\n    tls: { protocols: [TLSv1.3] }"),
                        "4:10: listeners[0].tls: no key material (expected: "
                                + "certificate and privateKey, certificates, or keyStore)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "port: 8080", "port: 8443\n    tls: { certificate: c.pem, privateKey: k.pem }"),
                        "4:25: listeners[0].tls.certificate: file not found: "),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "port: 8080", "port: 8443\n    tls: { keyStore: s.p12, protocols: [TLSv1.1] }"),
                        "4:41: listeners[0].tls.protocols[0]: 'TLSv1.1' is not allowed"
                                + " (expected: TLSv1.3 or TLSv1.2; older ones are refused at check time)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "port: 8080", "port: 8443\n    tls: { keyStore: s.p12, clientAuth: required }"),
                        "4:10: listeners[0].tls: keyStore needs keyStorePassword "
                                + "(expected: keyStorePassword: ${KS_PASSWORD})"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "port: 8080", "port: 8443\n    tls: { keyStore: s.p12, clientAuth: required }"),
                        "4:41: listeners[0].tls.clientAuth: required needs "
                                + "clientCAs (expected: clientCAs: a PEM bundle of client CAs)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("  - port: 8080", "  - port: 8080\n  - port: 8080"),
                        "4:11: listeners[1].port: 0.0.0.0:8080 is used by another "
                                + "listener (expected: one listener per host and port)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "admin: { port: 8080 }\n",
                        "9:16: admin.port: port 8080 is also a listener's port (expected: a port of its own)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "admin: { port: 9090, probes: { port: 9090 } }\n",
                        "9:38: admin.probes.port: port 9090 is also admin.port (expected: a port of its own)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "admin: { probes: { port: 8080 } }\n",
                        "9:26: admin.probes.port: port 8080 is also a listener's port (expected: a port of its own)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "admin: { probes: { port: 9091, path: /healthz } }\n",
                        "9:32: admin.probes.path: unknown key (expected: one of host, port)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "admin: { probes: 9091 }\n",
                        "9:18: admin.probes: got a scalar (expected: a map with host and port)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "admin: { host: 0.0.0.0, port: 9090 }\n",
                        "9:16: admin.host: 0.0.0.0 is reachable from other machines, and admin.token is not set: set it"
                                + " (e.g. token: ${WSGUARD_ADMIN_TOKEN}) or bind to 127.0.0.1"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "proxy: { trustedProxies: [lb.example.com] }\n",
                        "9:27: proxy.trustedProxies[0]: 'lb.example.com' is not a CIDR"
                                + " (expected: an IP address with an optional prefix, like 10.0.0.0/8 or ::1/128)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "proxy: { trustedProxies: [10.0.0.0/33] }\n",
                        "9:27: proxy.trustedProxies[0]: '10.0.0.0/33' has a bad prefix length (expected: 0..32)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "    messages: { deny: [ { name: x, pattern: '(<script' } ] }\n",
                        "9:45: routes[0].messages.deny[0].pattern: not an RE2 regular expression: missing closing )"
                                + " in `(<script` (expected: an RE2 regular expression)"),
                // RE2 matches in linear time because it refuses what needs backtracking: say so at the pattern.
                Arguments.of(
                        PolicyFiles.MINIMAL + "    messages: { deny: [ { name: x, pattern: 'a(?=b)' } ] }\n",
                        "9:45: routes[0].messages.deny[0].pattern: not an "
                                + "RE2 regular expression: invalid or unsupported"
                                + " Perl syntax in `(?=`; lookaround and backreferences are not supported"
                                + " (expected: an RE2 regular expression)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "    messages: { deny: [ { name: x, pattern: '(a)\\1' } ] }\n",
                        "9:45: routes[0].messages.deny[0].pattern: not an "
                                + "RE2 regular expression: invalid escape sequence"
                                + " in `\\1`; lookaround and backreferences are not "
                                + "supported (expected: an RE2 regular expression)"),
                // RE2/J would run out of heap compiling this; refused before.
                Arguments.of(
                        PolicyFiles.MINIMAL
                                + "    messages: { deny: [ { name: x, pattern: '((a{1000}){1000}){1000}' } ] }\n",
                        "9:45: routes[0].messages.deny[0].pattern: not an "
                                + "RE2 regular expression wsguard accepts: its nested"
                                + " repetitions expand to about 1000000000 instructions (expected: at most 100000)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("auth: none", "auth: { jwt: { algorithms: [none], secret: s } }"),
                        "8:33: routes[0].auth.jwt.algorithms[0]: 'none' is never "
                                + "accepted (expected: a signing algorithm like RS256)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "auth: none",
                                "auth: { jwt: { algorithms: [HS256], secret: s, jwksUri: 'https://a/' } }"),
                        "8:52: routes[0].auth.jwt.jwksUri: a second key source, next to secret"
                                + " (expected: exactly one of jwksUri, jwksFile, publicKey, secret)"),
                // Block style: at the conflicting key's own line, each one after the first.
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "auth: none",
                                "auth:\n      jwt:\n        algorithms: [RS256]\n"
                                        + "        jwksUri: 'https://a/'\n        publicKey: k.pem\n        secret: s"),
                        "12:9: routes[0].auth.jwt.publicKey: a second key source, next to jwksUri"
                                + " (expected: exactly one of jwksUri, jwksFile, publicKey, secret)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "auth: none",
                                "auth:\n      jwt:\n        algorithms: [RS256]\n"
                                        + "        jwksUri: 'https://a/'\n        publicKey: k.pem\n        secret: s"),
                        "13:9: routes[0].auth.jwt.secret: a second key source, next to jwksUri"
                                + " (expected: exactly one of jwksUri, jwksFile, publicKey, secret)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("auth: none", "auth: { jwt: { algorithms: [HS256] } }"),
                        "8:18: routes[0].auth.jwt: no key source (expected: "
                                + "exactly one of jwksUri, jwksFile, publicKey, secret)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "auth: none", "auth: { jwt: { algorithms: [HS256], secret: s, allowNoExpiry: yes } }"),
                        "8:67: routes[0].auth.jwt.allowNoExpiry: 'yes' is not a boolean (expected: true or false)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "    messages: { json: { typeField: type } }\n",
                        "9:23: routes[0].messages.json: typeField without "
                                + "schemas (expected: typeField and schemas together)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("chat] }", "chat], headers: { set: { X-User: '${jwt.sub}' } } }"),
                        "7:80: routes[0].upstream.headers.set.X-User: uses ${jwt.…} but the "
                                + "route has no auth.jwt (expected: auth: {jwt: …}, or a static value)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("name: chat", "name: '${jwt.sub}'"),
                        "5:11: routes[0].name: '${jwt.sub}' is expanded only in upstream.headers.set values"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "rateLimitStore: { type: redis }\n",
                        "9:17: rateLimitStore: type redis needs redis (expected: redis: {uri: redis://host:6379})"),
                Arguments.of(
                        PolicyFiles.MINIMAL
                                + "rateLimitStore: { type: redis, redis: { uri: 'redis://127.0.0.1:6379/x' } }\n",
                        "9:46: rateLimitStore.redis.uri: is not a valid Redis URI (expected:"
                                + " redis://[[user:]password@]host[:port][/database],"
                                + " or redis-sentinel://host:26379[,host:26379]#master)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "rateLimitStore: { type: redis, redis: { leaseTtl: 2s } }\n",
                        "9:51: rateLimitStore.redis.leaseTtl: is under 3s (expected: at least 3s; heartbeats run every"
                                + " third of"
                                + " it, and a slower one would let a live instance's slots expire)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "rateLimitStore: { type: redis, redis: { leaseTtl: 3s, timeout: 1s } }\n",
                        "9:64: rateLimitStore.redis.timeout: is not under a third of leaseTtl (expected: a Redis call"
                                + " that ends"
                                + " before the next heartbeat)"),
                Arguments.of(
                        PolicyFiles.MINIMAL
                                + "rateLimitStore: { type: redis, redis: { uri: 'redis://r:6379',"
                                + " caFile: policy.yaml } }\n",
                        "9:72: rateLimitStore.redis.caFile: is set but the uri is not rediss:// or rediss-sentinel://"
                                + " (expected: TLS to Redis when a CA is given)"),
                Arguments.of(
                        PolicyFiles.MINIMAL
                                + "rateLimitStore: { type: redis, redis: { uri: 'redis-sentinel://r:26379#m',"
                                + " cluster: true } }\n",
                        "9:85: rateLimitStore.redis.cluster: is true with a Sentinel uri (expected: cluster: true with"
                                + " redis:// or rediss:// seed nodes, or a Sentinel uri without cluster)"),
                Arguments.of(
                        PolicyFiles.MINIMAL
                                + "rateLimitStore: { type: redis, redis: { uri: 'redis-sentinel://r:26379' } }\n",
                        "9:46: rateLimitStore.redis.uri: names no master (expected:"
                                + " redis-sentinel://host:26379[,host:26379]#masterName)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "rateLimitStore: { type: redis, redis: { password: '' } }\n",
                        "9:51: rateLimitStore.redis.password: is empty (expected: the password, e.g. password:"
                                + " ${REDIS_PASSWORD}; leave the key out when Redis has none)"),
                Arguments.of(
                        PolicyFiles.MINIMAL
                                + "rateLimitStore: { type: redis, redis: { password: '${REDIS_PASSWORD:-}' } }\n",
                        "9:51: rateLimitStore.redis.password: is empty (expected: the password, e.g. password:"
                                + " ${REDIS_PASSWORD}; leave the key out when Redis has none)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("name: chat", "name: ${ROUTE_NAME}"),
                        "5:11: routes[0].name: environment variable ROUTE_NAME is not set"
                                + " (expected: set it, or give a default: ${ROUTE_NAME:-default})"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "audit: { sink: kafka }\n",
                        "9:16: audit.sink: 'kafka' is not allowed (expected: file or stdout or syslog)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "audit: { maxFiles: [1, 2] }\n",
                        "9:20: audit.maxFiles: got a list (expected: a value)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "audit: { linesPerClient: 60 }\n",
                        "9:26: audit.linesPerClient: '60' is not a rate "
                                + "(expected: like 50/s, 3000/min, 10/h or 1MiB/s)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "audit: { connections: yes }\n",
                        "9:23: audit.connections: 'yes' is not a boolean (expected: true or false)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "audit: { linesPerClient: 1KiB/min }\n",
                        "9:26: audit.linesPerClient: '1KiB/min' is a byte "
                                + "rate (expected: a count of lines like 60/min)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("chat] }", "chat], tls: { verifyHostname: yes } }"),
                        "7:77: routes[0].upstream.tls.verifyHostname: "
                                + "'yes' is not a boolean (expected: true or false)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace("name: chat", "name: !!binary Y2hhdA=="),
                        "5:11: tag 'tag:yaml.org,2002:binary' is not allowed (expected: plain YAML without tags)"),
                Arguments.of(PolicyFiles.MINIMAL.replace("{ path: /chat }", "{ path: /chat"), "not valid YAML: "),
                Arguments.of("- version: 1\n", "1:1: got a list (expected: a map with version, listeners and routes)"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "auth: none",
                                "auth: { jwt: { algorithms: [HS256], secret: s, require: { admin: true } } }"),
                        "8:70: routes[0].auth.jwt.require.admin: 'true' is "
                                + "not a string (expected: a quoted string like \"true\")"),
                Arguments.of(
                        PolicyFiles.MINIMAL.replace(
                                "chat] }", "chat], headers: { set: { X-Tag: \"a\\r\\nX-Evil: 1\" } } }"),
                        "7:79: routes[0].upstream.headers.set.X-Tag: the value "
                                + "holds control characters (expected: one line of text)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "    limits: { idleTimeout: 0s }\n",
                        "9:28: routes[0].limits.idleTimeout: '0s' is zero (expected: a duration > 0)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "proxy: { clusterMaxConnections: 0 }\n",
                        "9:33: proxy.clusterMaxConnections: 0 is out of range (expected: 1..2147483647)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "proxy: { clusterMaxConnections: 1000 }\n",
                        "9:33: proxy.clusterMaxConnections: needs rateLimitStore.type: redis (expected: a shared store,"
                                + " or proxy.maxConnections per instance)"),
                Arguments.of(
                        PolicyFiles.MINIMAL + "anchors: &a [1]\n",
                        "9:1: anchors: unknown key (expected: one of version, "
                                + "listeners, admin, proxy, audit, rateLimitStore, routes)"));
    }

    @ParameterizedTest
    @MethodSource("brokenPolicies")
    void reportsTheLocatedProblem(String yaml, String expected) {
        assertThat(PolicyFiles.problems(dir, yaml, Map.of()))
                .contains("policy.yaml:" + (expected.startsWith("not valid") ? "" : expected))
                .contains(expected);
    }

    @Test
    void aBadUriIsQuotedWithoutItsPasswordOrQueryValues() {
        // Errors reach the terminal, the reload's audit line and the admin port's 422: never a secret.
        final String problems = PolicyFiles.problems(
                dir,
                PolicyFiles.MINIMAL.replace(
                        "ws://127.0.0.1:9000/chat", "http://svc:s3cret@127.0.0.1:9000/chat?access_token=t0ken"),
                Map.of());
        assertThat(problems)
                .contains("'http://svc:<redacted>@127.0.0.1:9000/chat?access_token=<redacted>' is not a WebSocket URI")
                .doesNotContain("s3cret")
                .doesNotContain("t0ken");
    }

    @Test
    void aPolicyNestedThousandsDeepIsALocatedProblemNotACrash() {
        // The YAML composer recurses once per level; 200,000 '[' (200 KB, under the 1 MiB cap) overflow it.
        assertThat(PolicyFiles.problems(dir, "version: 1\nroutes: " + "[".repeat(200_000) + "\n", Map.of()))
                .contains("policy.yaml:1:1: nested too deeply to read");
    }
}
