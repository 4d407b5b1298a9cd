package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.SchemaChecked;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Listener names, {@code match.listeners}, {@code auth.clientCertificate}, {@code ${tls.…}} and
 * {@code proxy.pathMatching}: each mistake is one located problem, found before any traffic flows.
 */
class ListenerNamesTest {

    /** Lines: 3 mtls listener, 4 plain listener, 6 route name, 7 match, 8 upstream, 9 auth. */
    static final String MIXED = """
            version: 1
            listeners:
              - { name: mtls, port: 8443, tls: { certificate: c.pem, privateKey: k.pem, clientAuth: required, \
            clientCAs: ca.pem } }
              - { name: plain, port: 8080 }
            routes:
              - name: admin
                match: { path: /admin, listeners: [mtls] }
                upstream: { targets: [ws://127.0.0.1:9000/admin] }
                auth: none
            """;

    /** Lines: 3 optional-certificate listener, 4 plain listener, 7 match, 8 upstream, 9 auth. */
    static final String OPTIONAL = MIXED.replace("name: mtls, port: 8443", "name: opt, port: 8443")
            .replace("clientAuth: required", "clientAuth: optional")
            .replace("listeners: [mtls]", "listeners: [opt]");

    @TempDir
    Path dir;

    @BeforeEach
    void files() throws IOException {
        // The binder checks that files exist; reading them as certificates is the compiler's job.
        for (String name : List.of("c.pem", "k.pem", "ca.pem")) {
            Files.writeString(dir.resolve(name), "x");
        }
    }

    static Stream<Arguments> brokenPolicies() {
        return Stream.of(
                Arguments.of(
                        MIXED.replace("path: /admin, listeners: [mtls]", "path: /admin"),
                        "7:5: routes[0].match: no listeners, so the route "
                                + "is served both on 'mtls', which requires client"
                                + " certificates, and on 'plain', which does not (expected: "
                                + "listeners: [names of the listeners the route belongs to])"),
                Arguments.of(
                        MIXED.replace("listeners: [mtls]", "listeners: [mtls, admin-port]"),
                        "7:46: routes[0].match.listeners[1]: 'admin-port' is "
                                + "not a listener's name (expected: one of mtls, plain)"),
                Arguments.of(
                        MIXED.replace("name: plain", "name: mtls"),
                        "4:13: listeners[1].name: 'mtls' is already the name of listeners[0] (expected: unique names)"),
                Arguments.of(
                        MIXED.replace(
                                        "{ name: plain, port: 8080 }",
                                        "{ host: 127.0.0.1, port: 0 }\n  - { host: '::1', port: 0 }")
                                .replace("listeners: [mtls]", "listeners: [mtls, ws-0]"),
                        "5:5: listeners[2]: its default name 'ws-0' is already the name of listeners[1]"
                                + " (expected: name: … on one of them, so that routes can tell them apart)"),
                Arguments.of(
                        MIXED.replace("name: plain", "name: 'plain port'"),
                        "4:13: listeners[1].name: 'plain port' is not a listener "
                                + "name (expected: letters, digits, '_', '.', '-')"),
                Arguments.of(
                        MIXED.replace("listeners: [mtls]", "listeners: []"),
                        "7:39: routes[0].match.listeners: is empty (expected: at "
                                + "least one listener name; leave it out for every listener)"),
                Arguments.of(
                        OPTIONAL.replace("listeners: [opt]", "listeners: [opt, plain]")
                                .replace("auth: none", "auth: { clientCertificate: required }"),
                        "9:32: routes[0].auth.clientCertificate: listener 'plain' "
                                + "asks for no client certificate, so the route would"
                                + " refuse every handshake there (expected: match.listeners "
                                + "naming listeners with clientAuth: optional or required)"),
                Arguments.of(
                        OPTIONAL.replace("auth: none", "auth: { clientCertificate: maybe }"),
                        "9:32: routes[0].auth.clientCertificate: 'maybe' is not allowed (expected: required or none)"),
                Arguments.of(
                        OPTIONAL.replace("listeners: [opt]", "listeners: [plain]")
                                .replace("admin] }", "admin], headers: { set: { X-Client: '${tls.subject}' } } }"),
                        "8:83: routes[0].upstream.headers.set.X-Client: uses "
                                + "${tls.…} but no listener of the route asks for client"
                                + " certificates (expected: a listener with "
                                + "clientAuth: optional or required, or a static value)"),
                Arguments.of(
                        OPTIONAL.replace("admin] }", "admin], headers: { set: { X-Client: '${tls.issuer}' } } }"),
                        "8:83: routes[0].upstream.headers.set.X-Client: "
                                + "'${tls.issuer}' is not a client certificate field"
                                + " (expected: ${tls.subject} or ${tls.fingerprint})"),
                Arguments.of(
                        OPTIONAL.replace("name: admin", "name: '${tls.subject}'"),
                        "6:11: routes[0].name: '${tls.subject}' is expanded only in upstream.headers.set values"
                                + " (expected: an environment variable like ${NAME} or ${NAME:-default})"),
                Arguments.of(
                        MIXED + "proxy: { pathMatching: loose }\n",
                        "10:24: proxy.pathMatching: 'loose' is not allowed (expected: normalized or exact)"));
    }

    @ParameterizedTest
    @MethodSource("brokenPolicies")
    void reportsTheLocatedProblem(String yaml, String expected) {
        assertThat(PolicyFiles.problems(dir, yaml, Map.of())).isEqualTo(dir.resolve("policy.yaml") + ":" + expected);
    }

    @Test
    void namesDefaultToSchemeAndPortAndRoutesKeepTheirListeners() {
        final Policy policy =
                SchemaChecked.load(PolicyFiles.write(dir, """
                version: 1
                listeners:
                  - { port: 8443, tls: { certificate: c.pem, privateKey: k.pem } }
                  - { port: 8080 }
                  - { name: internal, host: 127.0.0.1, port: 9000 }
                proxy: { pathMatching: exact }
                routes:
                  - name: chat
                    match: { path: /chat, listeners: [wss-8443, internal] }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: { clientCertificate: none }
                """), Map.of()).policy();
        assertThat(policy.listeners())
                .extracting(ListenerPolicy::name)
                .containsExactly("wss-8443", "ws-8080", "internal");
        assertThat(policy.routes().get(0).match().listeners()).containsExactly("wss-8443", "internal");
        assertThat(policy.routes().get(0).match().servedOn("ws-8080")).isFalse();
        assertThat(policy.routes().get(0).auth()).isEqualTo(AuthPolicy.NONE);
        assertThat(policy.proxy().pathMatching()).isEqualTo(ProxyPolicy.PathMatching.EXACT);
    }

    @Test
    void mixedListenersLoadWhenEveryRouteNamesItsListeners() {
        assertThat(PolicyFiles.problems(dir, MIXED, Map.of())).isEmpty();
        // A route may also name both kinds on purpose; only the silent default is refused.
        assertThat(PolicyFiles.problems(dir, MIXED.replace("listeners: [mtls]", "listeners: [mtls, plain]"), Map.of()))
                .isEmpty();
        // Every listener requires certificates: a route on all of them is on no open one.
        assertThat(PolicyFiles.problems(
                        dir,
                        MIXED.replace("  - { name: plain, port: 8080 }\n", "").replace(", listeners: [mtls]", ""),
                        Map.of()))
                .isEmpty();
    }

    @Test
    void aRouteMayRequireACertificateAndPassItsFieldsOn() {
        final Policy policy = SchemaChecked.load(
                        PolicyFiles.write(
                                dir,
                                OPTIONAL.replace("auth: none", "auth: { clientCertificate: required }")
                                        .replace(
                                                "admin] }",
                                                "admin], headers: { set: { X-Client: "
                                                        + "'${tls.subject} ${tls.fingerprint}' } } }")),
                        Map.of())
                .policy();
        assertThat(policy.routes().get(0).auth().clientCertificate()).isEqualTo(AuthPolicy.ClientCertificate.REQUIRED);
        assertThat(policy.routes().get(0).auth().jwt()).isEmpty();
        assertThat(policy.routes().get(0).upstream().headers().set())
                .containsEntry("X-Client", "${tls.subject} ${tls.fingerprint}");
    }
}
