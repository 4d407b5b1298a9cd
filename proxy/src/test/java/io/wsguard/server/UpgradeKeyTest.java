package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawRequest;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * RFC 6455 §4.2.1 from outside: an upgrade whose {@code Sec-WebSocket-Key} is not 16 bytes in base64,
 * is missing or repeated, or whose {@code Upgrade} does not name {@code websocket}, gets
 * 400 {@code invalid_upgrade}, audited and counted, and the upstream is never dialed. Each case comes
 * from an address of its own (X-Forwarded-For from the trusted 127.0.0.1), so each has its own line.
 */
@Timeout(60)
class UpgradeKeyTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: keys
                  match: { path: /keys }
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

    private static RawRequest upgrade(String clientIp, List<String> lines) throws Exception {
        final List<String> head =
                new ArrayList<>(List.of("Host: 127.0.0.1:" + proxy.port(), "X-Forwarded-For: " + clientIp));
        head.addAll(lines);
        return RawRequest.get(proxy.port(), "/keys", head);
    }

    private static List<String> withKeys(String... keyLines) {
        final List<String> lines = RawRequest.upgradeHeaders();
        lines.addAll(List.of(keyLines));
        return lines;
    }

    static Stream<Arguments> badUpgrades() {
        return Stream.of(
                Arguments.of(
                        "3 bytes",
                        "198.18.0.1",
                        withKeys("Sec-WebSocket-Key: AAAA"),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "32 bytes",
                        "198.18.0.2",
                        withKeys("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "15 bytes",
                        "198.18.0.3",
                        withKeys("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "17 bytes in 24 characters",
                        "198.18.0.14",
                        withKeys("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "not base64",
                        "198.18.0.4",
                        withKeys("Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "16 bytes without padding",
                        "198.18.0.5",
                        withKeys("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "whitespace inside",
                        "198.18.0.6",
                        withKeys("Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ=="),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "base64url alphabet",
                        "198.18.0.7",
                        withKeys("Sec-WebSocket-Key: -_-_-_-_-_-_-_-_-_-_-A=="),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "empty",
                        "198.18.0.8",
                        withKeys("Sec-WebSocket-Key: "),
                        "Sec-WebSocket-Key is not 16 bytes in base64"),
                Arguments.of(
                        "two valid keys",
                        "198.18.0.9",
                        withKeys("Sec-WebSocket-Key: " + RawRequest.KEY, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="),
                        "more than one Sec-WebSocket-Key"),
                Arguments.of(
                        "the same key twice",
                        "198.18.0.10",
                        withKeys("Sec-WebSocket-Key: " + RawRequest.KEY, "Sec-WebSocket-Key: " + RawRequest.KEY),
                        "more than one Sec-WebSocket-Key"),
                Arguments.of("no key", "198.18.0.11", withKeys(), "no Sec-WebSocket-Key"),
                Arguments.of(
                        "no Upgrade",
                        "198.18.0.12",
                        List.of(
                                "Connection: Upgrade",
                                "Sec-WebSocket-Version: 13",
                                "Sec-WebSocket-Key: " + RawRequest.KEY),
                        "Upgrade does not name websocket"),
                Arguments.of(
                        "Upgrade: h2c",
                        "198.18.0.13",
                        List.of(
                                "Upgrade: h2c",
                                "Connection: Upgrade",
                                "Sec-WebSocket-Version: 13",
                                "Sec-WebSocket-Key: " + RawRequest.KEY),
                        "Upgrade does not name websocket"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badUpgrades")
    void badUpgradeIs400AuditedAndNeverDialsTheUpstream(String name, String clientIp, List<String> lines, String detail)
            throws Exception {
        final int before = upstream.upgrades();
        final RawRequest refused = upgrade(clientIp, lines);
        assertThat(refused.status()).as(name).isEqualTo(400);
        assertThat(refused.header("Sec-WebSocket-Accept")).isNull();
        assertThat(upstream.upgrades()).as("upstream upgrades").isEqualTo(before);
        final List<Map<String, Object>> lines400 = proxy.auditLines().stream()
                .filter(l -> clientIp.equals(l.get("client")))
                .toList();
        assertThat(lines400).singleElement().satisfies(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", "invalid_upgrade")
                .containsEntry("route", "keys")
                .containsEntry("action", "refuse")
                .containsEntry("status", 400)
                .containsEntry("count", 1)
                .containsEntry("detail", detail));
        assertThat(proxy.server().metrics().scrape())
                .contains("wsguard_handshakes_total{outcome=\"invalid_upgrade\",route=\"keys\"}")
                .contains("wsguard_blocked_total{reason=\"invalid_upgrade\",route=\"keys\"}");
    }

    @Test
    void aValidKeyWithSurroundingWhitespaceIsAcceptedAsHttpTrimsIt() throws Exception {
        final int before = upstream.upgrades();
        // RFC 9110 §5.5: optional whitespace around a field value is not part of it.
        final RawRequest ok = upgrade("198.18.1.1", withKeys("Sec-WebSocket-Key: \t " + RawRequest.KEY + " \t"));
        assertThat(ok.status()).isEqualTo(101);
        // RFC 6455 §1.3's example: this key's accept value.
        assertThat(ok.header("Sec-WebSocket-Accept")).isEqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assertThat(upstream.upgrades()).isEqualTo(before + 1);
    }
}
