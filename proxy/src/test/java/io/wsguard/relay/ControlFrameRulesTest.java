package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Deny rules on what control frames carry (issue 14, item 9): a PING's or PONG's payload and a
 * CLOSE's reason reach the peer as they are, so on a route with deny rules they meet those rules,
 * from the client and, with {@code direction: both}, from the upstream. Only the deny rules: JSON,
 * schema and sanitizing are for messages. Each test checks the close code, what the other side
 * received and the audit line.
 */
@Timeout(60)
class ControlFrameRulesTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: deny
                  match: { path: /deny }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    sanitize: { html: strip }
                    deny: [ { name: forbidden, pattern: "forbidden-[0-9]+" } ]
                - name: both
                  match: { path: /both }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    direction: both
                    deny: [ { name: forbidden, pattern: "forbidden-[0-9]+" } ]
                - name: inbound
                  match: { path: /inbound }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    deny: [ { name: forbidden, pattern: "forbidden-[0-9]+" } ]
                - name: drop
                  match: { path: /drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    onViolation: drop
                    deny: [ { name: forbidden, pattern: "forbidden-[0-9]+" } ]
                """.formatted(upstream.uri("/echo"))));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @BeforeEach
    void clear() {
        upstream.pings().clear();
        upstream.pongs().clear();
        upstream.closes().clear();
    }

    @Test
    void aClientPingMatchingADenyRuleClosesWith1008AndNeverReachesTheUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        // Only the deny rules apply: a clean payload goes on as it is, markup and all (no sanitizing).
        final String clean = "clean <b>ping</b> & more";
        ws.session.sendPing(ByteBuffer.wrap(utf8(clean)), Callback.NOOP);
        assertThat(ws.pongs.poll(5, TimeUnit.SECONDS)).isEqualTo(utf8(clean));
        assertThat(upstream.pings()).contains(clean);
        ws.session.sendPing(ByteBuffer.wrap(utf8("ping forbidden-1")), Callback.NOOP);
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.pings()).doesNotContain("ping forbidden-1");
        assertThat(ws.pongs).isEmpty();
        assertAudited("deny", 1008, "close", "rule forbidden matched (a ping)");
    }

    @Test
    void aClientPongMatchingADenyRuleClosesWith1008AndNeverReachesTheUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.session.sendPong(ByteBuffer.wrap(utf8("pong forbidden-2")), Callback.NOOP);
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.pongs()).doesNotContain("pong forbidden-2");
        assertAudited("deny", 1008, "close", "rule forbidden matched (a pong)");
    }

    /** The client's CLOSE is answered with 1008, and the upstream gets wsguard's 1001 instead of the reason. */
    @Test
    void aClientCloseReasonMatchingADenyRuleIsAnsweredWith1008AndNeverReachesTheUpstream() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/deny", Map.of())) {
            final ByteArrayOutputStream close = new ByteArrayOutputStream();
            close.write(1000 >> 8);
            close.write(1000 & 0xFF);
            close.writeBytes(utf8("bye forbidden-3"));
            raw.sendFrame(true, false, 0x8, close.toByteArray());
            assertThat(raw.awaitCloseCode()).isEqualTo(1008);
        }
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(upstream.closes()).anyMatch(c -> c.startsWith("1001")));
        assertThat(upstream.closes()).noneMatch(c -> c.contains("forbidden-3"));
        assertAudited("deny", 1008, "close", "rule forbidden matched (a close reason)");
    }

    /**
     * direction: both: the upstream's PING is refused before the client sees it (the client would have answered it).
     */
    @Test
    void anUpstreamPingMatchingADenyRuleClosesTheUpstreamWith1008AndTheClientWith1014() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/both"));
        ws.send("push-ping:" + b64("clean upstream ping"));
        await().atMost(Duration.ofSeconds(5)).until(() -> upstream.pongs().contains("clean upstream ping"));
        ws.send("push-ping:" + b64("ping forbidden-4"));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1014);
        assertThat(upstream.closes().poll(5, TimeUnit.SECONDS)).startsWith("1008");
        assertThat(upstream.pongs()).doesNotContain("ping forbidden-4");
        assertAudited("both", 1014, "close", "rule forbidden matched (a ping)");
    }

    @Test
    void anUpstreamCloseReasonMatchingADenyRuleNeverReachesTheClient() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/both"));
        ws.send("push-close:1000:" + b64("bye forbidden-5"));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1014);
        assertThat(ws.closeReason).doesNotContain("forbidden-5");
        assertAudited("both", 1014, "close", "rule forbidden matched (a close reason)");
    }

    /**
     * Without direction: both the upstream's control frames are not checked, as its messages are not:
     * the PING reaches the client. The client's answer is, though: its PONG carries the same text.
     */
    @Test
    void anUpstreamPingOnAnInboundRouteReachesTheClientAndTheClientsPongIsChecked() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/inbound"));
        ws.send("push-ping:" + b64("ping forbidden-6"));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(upstream.pongs()).doesNotContain("ping forbidden-6");
        assertAudited("inbound", 1008, "close", "rule forbidden matched (a pong)");
    }

    /** onViolation: drop: the ping is not relayed (nor answered), audited as a drop; the connection stays. */
    @Test
    void withDropAPingMatchingADenyRuleIsNotRelayedAndTheConnectionStays() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/drop"));
        ws.session.sendPing(ByteBuffer.wrap(utf8("ping forbidden-7")), Callback.NOOP);
        ws.session.sendPing(ByteBuffer.wrap(utf8("clean after the drop")), Callback.NOOP);
        assertThat(ws.pongs.poll(5, TimeUnit.SECONDS)).isEqualTo(utf8("clean after the drop"));
        assertThat(ws.pongs).isEmpty();
        assertThat(upstream.pings()).containsExactly("clean after the drop");
        assertThat(ws.session.isOpen()).isTrue();
        assertAudited("drop", null, "drop", "rule forbidden matched (a ping)");
        ws.session.close();
    }

    private static void assertAudited(String route, Integer closeCode, String action, String detail) {
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", route)
                        .containsEntry("reason", "pattern_denied")
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "message")
                        .containsEntry("action", action)
                        .containsEntry("closeCode", closeCode)
                        .containsEntry("detail", detail)));
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String b64(String text) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(utf8(text));
    }
}
