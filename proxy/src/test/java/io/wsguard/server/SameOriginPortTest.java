package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawRequest;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The default origin rule (a route without {@code origin:}) on a plain {@code ws://} listener compares
 * ports: a page on another port of the same host, as a DNS-rebinding page usually is, gets 403
 * {@code origin_denied}, audited, and the upstream never sees it; the same host and port, default
 * ports normalised, is let through. Each refusal comes from an address of its own (X-Forwarded-For
 * from the trusted 127.0.0.1), so that each has its own audit line.
 */
@Timeout(60)
class SameOriginPortTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: plain
                  match: { path: /plain }
                  upstream: { targets: [%s] }
                  auth: none
                """.formatted(upstream.uri("/echo")))
                .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n"));
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    private static RawRequest upgrade(String host, String origin, String clientIp) throws Exception {
        final List<String> lines = RawRequest.upgradeHeaders();
        lines.add("Host: " + host);
        lines.add("Origin: " + origin);
        lines.add("X-Forwarded-For: " + clientIp);
        lines.add("Sec-WebSocket-Key: " + RawRequest.KEY);
        return RawRequest.get(proxy.port(), "/plain", lines);
    }

    @Test
    void aPageOnAnotherPortOfTheSameHostIs403AuditedAndNeverReachesTheUpstream() throws Exception {
        final int port = proxy.port();
        final int other = port == 65535 ? port - 1 : port + 1;
        final int before = upstream.upgrades();

        final RawRequest refused = upgrade("127.0.0.1:" + port, "http://127.0.0.1:" + other, "198.18.2.1");

        assertThat(refused.status()).isEqualTo(403);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines())
                .filteredOn(line -> "198.18.2.1".equals(line.get("client")))
                .singleElement()
                .satisfies(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "handshake")
                        .containsEntry("reason", "origin_denied")
                        .containsEntry("route", "plain")
                        .containsEntry("origin", "http://127.0.0.1:" + other)
                        .containsEntry("action", "refuse")
                        .containsEntry("status", 403)
                        .containsEntry(
                                "detail", "origin is not the request's host and port (the route has no origin.allow)"));
        assertThat(proxy.server().metrics().scrape())
                .contains("wsguard_handshakes_total{outcome=\"origin_denied\",route=\"plain\"}");
    }

    @Test
    void thePagesOwnHostAndPortIsAccepted() throws Exception {
        final int port = proxy.port();
        final int before = upstream.upgrades();

        final RawRequest accepted = upgrade("127.0.0.1:" + port, "http://127.0.0.1:" + port, "198.18.2.2");

        assertThat(accepted.status()).isEqualTo(101);
        assertThat(upstream.upgrades()).isEqualTo(before + 1);
        assertThat(upstream.upgradeHeaders().get(upstream.upgradeHeaders().size() - 1))
                .containsEntry("x-forwarded-host", List.of("127.0.0.1:" + port));
    }

    /** Host as the client sent it (a proxy in front may map ports), and the page's Origin. */
    @ParameterizedTest(name = "Origin {1} on Host {0}: {2}")
    @CsvSource({
        "localhost:80, http://localhost, 101",
        "localhost, http://localhost:80, 101",
        "localhost, http://localhost, 101",
        "localhost, https://localhost, 101",
        "localhost:443, https://localhost, 101",
        "LOCALHOST:8080, http://localhost:8080, 101",
        "[::1]:8080, http://[0:0::1]:8080, 101",
        "localhost:80, https://localhost, 403",
        "localhost:443, http://localhost, 403",
        "localhost, http://localhost:8080, 403",
        "localhost:8080, http://localhost, 403",
        "localhost:8080, http://localhost:8081, 403",
        "[::1]:8080, http://[::1]:8081, 403",
        "localhost:8080, chrome-extension://localhost:8080, 403",
    })
    void hostAndOriginPortsCompareWithDefaultPortsNormalised(String host, String origin, int status) throws Exception {
        final int before = upstream.upgrades();
        final String clientIp = "198.18.3." + (Math.floorMod((host + origin).hashCode(), 250) + 1);

        final RawRequest answer = upgrade(host, origin, clientIp);

        assertThat(answer.status()).isEqualTo(status);
        assertThat(upstream.upgrades()).isEqualTo(status == 101 ? before + 1 : before);
        if (status == 403) {
            assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                    .containsEntry("reason", "origin_denied")
                    .containsEntry("route", "plain")
                    .containsEntry("client", clientIp)
                    .containsEntry("origin", origin)
                    .containsEntry("status", 403));
        }
    }

    @Test
    void noOriginIsStillANonBrowserClientAndPasses() throws Exception {
        final List<String> lines = RawRequest.upgradeHeaders();
        lines.addAll(List.of("Host: 127.0.0.1:" + proxy.port(), "Sec-WebSocket-Key: " + RawRequest.KEY));
        assertThat(RawRequest.get(proxy.port(), "/plain", lines).status()).isEqualTo(101);
        assertThat(proxy.auditLines())
                .noneMatch(line -> line.get("origin") == null && "origin_denied".equals(line.get("reason")));
    }
}
