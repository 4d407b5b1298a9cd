package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A path must mean the same to the route table as to the upstream: dot segments and path
 * parameters match no route (404 {@code no_route}, the upstream never sees them), routes match the
 * decoded path, and what goes upstream decodes to what was matched. Real proxy, raw upgrades.
 */
@Timeout(60)
class RequestPathTest {

    @TempDir
    static Path dir;

    private static UpstreamServer upstream;
    private static RunningProxy proxy;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: admin
                  match: { path: /admin }
                  upstream: { targets: [%s] }
                  auth: none
                - name: public
                  match: { pathPrefix: /public/ }
                  upstream: { targets: [%s] }
                  auth: none
                - name: chat
                  match: { pathPrefix: /chat }
                  upstream: { targets: [%s] }
                  auth: none
                """.formatted(upstream.uri("/admin-target"), upstream.uri("/pub"), upstream.uri("/chat")))
                .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n"));
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "/public/../admin",
                "/public/./x",
                "/public/x/..",
                "/chat../admin",
                "/public/x;jsessionid=1",
                "/admin;x=1"
            })
    void dotSegmentsAndPathParametersMatchNoRoute(String path) throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused = RawUpgrade.send(proxy.port(), path, Map.of())) {
            assertThat(refused.status()).isEqualTo(404);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "no_route")
                .containsEntry("status", 404)
                .containsEntry("detail", "path with a dot segment or path parameters matches no route"));
    }

    @Test
    void anEncodedLetterMatchesTheRouteOfTheDecodedPath() throws Exception {
        try (RawUpgrade upgraded = RawUpgrade.send(proxy.port(), "/%61dmin", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/admin-target");
    }

    @Test
    void aPrefixRoutesRemainderReachesTheUpstreamEncodedAsMatched() throws Exception {
        try (RawUpgrade upgraded = RawUpgrade.send(proxy.port(), "/public/caf%C3%A9/%72oom?q=7", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/pub/caf%C3%A9/room?q=7");
    }

    @ParameterizedTest
    @ValueSource(strings = {"/public/x?q=a|b", "/public/x?t=^", "/public/x?t=%zz"})
    void aQueryThatIsNoUriGets400BeforeTheUpstreamIsDialed(String target) throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused = RawUpgrade.send(proxy.port(), target, Map.of())) {
            assertThat(refused.status()).isEqualTo(400);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
    }

    @Test
    void everyXForwardedForLineOfATrustedPeerReachesTheUpstream() throws Exception {
        // Two header lines, as a proxy that appends its own line (HAProxy's option forwardfor) sends.
        try (RawUpgrade upgraded = RawUpgrade.send(
                proxy.port(), "/admin", Map.of("X-Forwarded-For", "203.0.113.7", "x-forwarded-for", "198.51.100.2"))) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        final String forwardedFor = String.join(
                ",",
                upstream.upgradeHeaders()
                        .get(upstream.upgradeHeaders().size() - 1)
                        .get("x-forwarded-for"));
        assertThat(forwardedFor)
                .contains("203.0.113.7")
                .contains("198.51.100.2")
                .endsWith(", 127.0.0.1");
    }
}
