package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.auth.TokenMinter;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.Deflater;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The message rules the relay enforces itself (docs/policy.md, {@code limits.messages/bytes}, {@code binary},
 * {@code maxSize}, UTF-8), provoked from the outside through a running proxy: the close code (or
 * the connection kept, for {@code drop}), that the upstream never received the message, the audit
 * line and the metric.
 */
@Timeout(120)
class MessageRulesTest {

    private static final String SECRET = "a message-rules test secret of at least 32 bytes";
    private static final int TEXT = 0x1;
    private static final int CONTINUATION = 0x0;

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: binary
                  match: { path: /binary }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { binary: deny }
                - name: binary-drop
                  match: { path: /binary-drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { binary: deny, onViolation: drop }
                - name: rate
                  match: { path: /rate }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 3 } } }
                - name: rate-drop
                  match: { path: /rate-drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 3 } }, onExceed: drop }
                - name: drop-size
                  match: { path: /drop-size }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 3 } }, onExceed: drop }
                - name: bytes
                  match: { path: /bytes }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { bytes: { perConnection: { rate: 1KiB/min, burst: 2KiB } } }
                  messages: { maxSize: 1KiB }
                - name: ping-drop
                  match: { path: /ping-drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 3 } }, onExceed: drop }
                - name: ping-bytes
                  match: { path: /ping-bytes }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { bytes: { perConnection: { rate: 1KiB/h, burst: 1KiB } } }
                  messages: { maxSize: 1KiB }
                - name: subject
                  match: { path: /subject }
                  upstream: { targets: [%1$s] }
                  auth: { jwt: { algorithms: [HS256], secret: "%2$s" } }
                  limits: { messages: { perSubject: { rate: 1/min, burst: 4 } } }
                - name: strict
                  match: { path: /strict }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { binary: deny, maxSize: 1KiB }
                - name: bomb
                  match: { path: /bomb }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { binary: deny, compression: allow }
                - name: plain-bomb
                  match: { path: /plain-bomb }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { compression: allow }
                - name: both
                  match: { path: /both }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { direction: both, binary: deny }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 1 } } }
                  messages: { binary: deny, maxSize: 1KiB }
                """.formatted(upstream.uri("/echo"), SECRET)));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void binaryMessageOnABinaryDenyRouteCloses1003AndNeverReachesTheUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/binary"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("text is fine");
        assertThat(ws.next()).isEqualTo("text is fine");
        final byte[] marker = "binary-marker-1".getBytes(StandardCharsets.UTF_8);
        ws.session.sendBinary(ByteBuffer.wrap(marker), Callback.NOOP);
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1003);
        assertUpstreamNeverGot(leg, marker);
        assertAudited("binary", "binary_denied", "close", 1003);
        assertThat(blockedMetric("binary", "binary_denied")).isGreaterThanOrEqualTo(1);
    }

    @Test
    void dropDiscardsTheBinaryMessageAndKeepsTheConnection() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/binary-drop"));
        final byte[] marker = "binary-marker-2".getBytes(StandardCharsets.UTF_8);
        ws.session.sendBinary(ByteBuffer.wrap(marker), Callback.NOOP);
        ws.session.sendBinary(ByteBuffer.wrap(marker), Callback.NOOP);
        ws.send("after the drops");
        assertThat(ws.next()).isEqualTo("after the drops");
        assertThat(ws.session.isOpen()).isTrue();
        // The echo of "after the drops" is the sentinel: the upstream read it after anything sent before it.
        assertThat(upstream.messages()).noneMatch(m -> m instanceof byte[] b && Arrays.equals(b, marker));
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(countOf("binary-drop", "binary_denied"))
                .isEqualTo(2));
        assertThat(proxy.auditLines())
                .filteredOn(line -> "binary-drop".equals(line.get("route")))
                .allSatisfy(
                        line -> assertThat(line).containsEntry("action", "drop").containsEntry("closeCode", null));
        ws.session.close();
    }

    @Test
    void messageRateClosesWith1008OnTheFirstMessageOverTheBurst() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/rate"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        for (int i = 0; i < 3; i++) {
            ws.send("rate-ok-" + i);
            assertThat(ws.next()).isEqualTo("rate-ok-" + i);
        }
        ws.send("rate-over");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertUpstreamNeverGot(leg, "rate-over");
        assertAudited("rate", "message_rate", "close", 1008);
    }

    @Test
    void messageRateWithDropKeepsTheConnectionAndCountsEveryDrop() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/rate-drop"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        for (int i = 0; i < 8; i++) {
            ws.send("rate-drop-" + i);
        }
        for (int i = 0; i < 3; i++) {
            assertThat(ws.next()).isEqualTo("rate-drop-" + i);
        }
        assertThat(ws.messages.poll(300, TimeUnit.MILLISECONDS)).isNull();
        assertThat(ws.session.isOpen()).isTrue();
        // Anything more is over the rate too: the client's close is the sentinel, relayed after the drops.
        ws.session.close();
        for (int i = 3; i < 8; i++) {
            assertUpstreamNeverGot(leg, "rate-drop-" + i);
        }
        // Five drops within a second: one coalesced line whose count says five (README, Audit log).
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(countOf("rate-drop", "message_rate"))
                .isEqualTo(5));
    }

    @Test
    void aMessageBeingDroppedIsStillCutAtMaxSize() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/drop-size"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        for (int i = 0; i < 3; i++) {
            ws.send("within-burst-" + i);
            assertThat(ws.next()).isEqualTo("within-burst-" + i);
        }
        // Over the rate: this message is dropped, but it goes on past the route's 64 KiB maxSize.
        final String chunk = "z".repeat(16 * 1024);
        for (int i = 0; i < 6; i++) {
            final java.util.concurrent.CompletableFuture<Void> sent = new java.util.concurrent.CompletableFuture<>();
            ws.session.sendPartialText(
                    chunk, false, Callback.from(() -> sent.complete(null), sent::completeExceptionally));
            try {
                sent.get(5, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException closedMeanwhile) {
                break;
            }
        }
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1009);
        assertUpstreamNeverGot(leg, chunk);
        assertAudited("drop-size", "message_too_big", "close", 1009);
    }

    @Test
    void byteRateClosesWith1008WhenTheBucketRunsDry() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/bytes"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final String kilobyte = "k".repeat(1000);
        ws.send(kilobyte);
        assertThat(ws.next()).isEqualTo(kilobyte);
        ws.send(kilobyte);
        assertThat(ws.next()).isEqualTo(kilobyte);
        ws.send("b".repeat(1000));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertUpstreamNeverGot(leg, "b".repeat(1000));
        assertAudited("bytes", "byte_rate", "close", 1008);
    }

    @Test
    void pingsAndPongsCountAsMessagesAndThePingOverTheBurstClosesWith1008() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/rate"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("rate-ping-message");
        assertThat(ws.next()).isEqualTo("rate-ping-message");
        ping(ws, "rate-ping-0");
        assertThat(ws.pongs.poll(5, TimeUnit.SECONDS)).isEqualTo(utf8("rate-ping-0"));
        ws.session.sendPong(ByteBuffer.wrap(utf8("rate-pong-1")), Callback.NOOP);
        await().atMost(Duration.ofSeconds(5)).until(() -> upstream.pongs().contains("rate-pong-1"));
        // The fourth frame against a burst of three: a message, a ping and a pong went before it.
        ping(ws, "rate-ping-over");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.pings()).doesNotContain("rate-ping-over");
        assertThat(ws.pongs).isEmpty();
        assertAuditedWithDetail(
                "rate", "message_rate", "close", 1008, "over messages.perConnection (1/min, burst 3) (a ping)");
    }

    @Test
    void pingsOverTheRateWithDropAreNotRelayedAndEachDropIsCounted() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/ping-drop"));
        ws.send("drop-ping-message");
        assertThat(ws.next()).isEqualTo("drop-ping-message");
        for (int i = 0; i < 2; i++) {
            ping(ws, "drop-ping-" + i);
            assertThat(ws.pongs.poll(5, TimeUnit.SECONDS)).isEqualTo(utf8("drop-ping-" + i));
        }
        for (int i = 0; i < 4; i++) {
            ping(ws, "drop-ping-over-" + i);
        }
        ws.session.sendPong(ByteBuffer.wrap(utf8("drop-pong-over")), Callback.NOOP);
        assertThat(ws.pongs.poll(300, TimeUnit.MILLISECONDS)).isNull();
        assertThat(ws.session.isOpen()).isTrue();
        assertThat(upstream.pings()).noneMatch(payload -> payload.startsWith("drop-ping-over-"));
        assertThat(upstream.pongs()).doesNotContain("drop-pong-over");
        // Five drops: one audit line, or two when the drops straddle a second, whose counts add up to five.
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
            final List<Map<String, Object>> lines = proxy.auditLines().stream()
                    .filter(line -> "ping-drop".equals(line.get("route")) && "message_rate".equals(line.get("reason")))
                    .toList();
            assertThat(lines).allSatisfy(line -> assertThat(String.valueOf(line.get("detail")))
                    .isIn(
                            "over messages.perConnection (1/min, burst 3) (a ping)",
                            "over messages.perConnection (1/min, burst 3) (a pong)"));
            assertThat(lines).allSatisfy(line -> assertThat(line)
                    .containsEntry("event", "blocked")
                    .containsEntry("action", "drop")
                    .containsEntry("closeCode", null));
            assertThat(lines.stream()
                            .mapToLong(line -> ((Number) line.get("count")).longValue())
                            .sum())
                    .isEqualTo(5);
        });
        assertThat(blockedMetric("ping-drop", "message_rate")).isEqualTo(5);
        ws.session.close();
    }

    @Test
    void pingsCountAgainstThePerSubjectRate() throws Exception {
        final TestClient.Recorder ws =
                client.connect(proxy.uri("/subject"), Map.of("Authorization", "Bearer " + token("carol")), List.of());
        final UpstreamServer.Endpoint leg = upstream.newest();
        for (int i = 0; i < 4; i++) {
            ping(ws, "carol-ping-" + i);
            assertThat(ws.pongs.poll(5, TimeUnit.SECONDS)).isEqualTo(utf8("carol-ping-" + i));
        }
        ping(ws, "carol-ping-over");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.pings()).doesNotContain("carol-ping-over");
        assertAuditedWithDetail(
                "subject", "message_rate", "close", 1008, "over messages.perSubject for this subject (a ping)");
        assertThat(proxy.auditLines())
                .anySatisfy(line ->
                        assertThat(line).containsEntry("route", "subject").containsEntry("sub", "carol"));
    }

    @Test
    void pingPayloadsCountAgainstTheByteRate() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/ping-bytes"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        // Eight pings of 125 bytes (the most a control frame holds) fit a burst of 1 KiB; the ninth does not.
        for (int i = 0; i < 8; i++) {
            final String payload = ("ping-bytes-" + i + "-").repeat(20).substring(0, 125);
            ping(ws, payload);
            assertThat(ws.pongs.poll(5, TimeUnit.SECONDS)).isEqualTo(utf8(payload));
        }
        final String over = "ping-bytes-over-".repeat(10).substring(0, 125);
        ping(ws, over);
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.pings()).doesNotContain(over);
        assertAuditedWithDetail(
                "ping-bytes", "byte_rate", "close", 1008, "over bytes.perConnection (1024/h, burst 1024) (a ping)");
    }

    @Test
    void perSubjectRateIsSharedByTheSubjectsConnections() throws Exception {
        final Map<String, String> alice = Map.of("Authorization", "Bearer " + token("alice"));
        final TestClient.Recorder first = client.connect(proxy.uri("/subject"), alice, List.of());
        final TestClient.Recorder second = client.connect(proxy.uri("/subject"), alice, List.of());
        final UpstreamServer.Endpoint secondLeg = upstream.newest();
        final TestClient.Recorder bob =
                client.connect(proxy.uri("/subject"), Map.of("Authorization", "Bearer " + token("bob")), List.of());
        for (int i = 0; i < 2; i++) {
            first.send("alice-a" + i);
            assertThat(first.next()).isEqualTo("alice-a" + i);
            second.send("alice-b" + i);
            assertThat(second.next()).isEqualTo("alice-b" + i);
        }
        bob.send("bob is not alice");
        assertThat(bob.next()).isEqualTo("bob is not alice");
        second.send("alice-over");
        assertThat(second.awaitClose()).isTrue();
        assertThat(second.closeCode).isEqualTo(1008);
        assertUpstreamNeverGot(secondLeg, "alice-over");
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("route", "subject")
                .containsEntry("reason", "message_rate")
                .containsEntry("sub", "alice"));
        assertThat(bob.session.isOpen()).isTrue();
        first.session.close();
        bob.session.close();
    }

    @Test
    void fragmentedMessageIsReassembledAndRelayedWhole() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/strict", Map.of())) {
            assertThat(raw.status()).isEqualTo(101);
            raw.sendFrame(false, false, TEXT, utf8("frag-"));
            raw.sendFrame(false, false, CONTINUATION, utf8("mented-"));
            raw.sendFrame(true, false, CONTINUATION, utf8("whole"));
            await().atMost(Duration.ofSeconds(5))
                    .until(() -> upstream.messages().contains("frag-mented-whole"));
        }
    }

    @Test
    void invalidUtf8ClosesWith1007AuditsItAndNothingReachesTheUpstream() throws Exception {
        final long audited = countOf("strict", "invalid_utf8");
        upstream.closes().clear();
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/strict", Map.of())) {
            // "bad-utf8" then an overlong encoding of '/', which no UTF-8 decoder may accept.
            raw.sendFrame(
                    true, false, TEXT, new byte[] {'b', 'a', 'd', '-', 'u', 't', 'f', '8', (byte) 0xC0, (byte) 0xAF});
            assertThat(raw.awaitCloseCode()).isEqualTo(1007);
        }
        assertAudited("strict", "invalid_utf8", "close", 1007);
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(countOf("strict", "invalid_utf8"))
                .isEqualTo(audited + 1));
        assertUpstreamNeverGotInvalidUtf8("bad-utf8");
    }

    @Test
    void invalidUtf8SplitAcrossFragmentsClosesWith1007AndNothingReachesTheUpstream() throws Exception {
        final long audited = countOf("strict", "invalid_utf8");
        upstream.closes().clear();
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/strict", Map.of())) {
            // "split-€" with the euro sign cut after its first byte, then a byte that cannot continue it.
            raw.sendFrame(false, false, TEXT, new byte[] {'s', 'p', 'l', 'i', 't', '-', (byte) 0xE2});
            raw.sendFrame(true, false, CONTINUATION, new byte[] {(byte) 0x41, 'x'});
            assertThat(raw.awaitCloseCode()).isEqualTo(1007);
        }
        assertAudited("strict", "invalid_utf8", "close", 1007);
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(countOf("strict", "invalid_utf8"))
                .isEqualTo(audited + 1));
        assertUpstreamNeverGotInvalidUtf8("split-");
    }

    @Test
    void textEndingInsideACharacterClosesWith1007() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/strict", Map.of())) {
            raw.sendFrame(false, false, TEXT, new byte[] {'c', 'u', 't', (byte) 0xE2});
            raw.sendFrame(true, false, CONTINUATION, new byte[] {(byte) 0x82});
            assertThat(raw.awaitCloseCode()).isEqualTo(1007);
        }
    }

    @Test
    void hundredThousandOneByteFragmentsAreCutAtMaxSizeWith1009() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/strict", Map.of())) {
            final ByteArrayOutputStream wire = new ByteArrayOutputStream();
            // Written in one go: 100,000 frames of one byte each, 7 bytes of header per byte of payload.
            for (int i = 0; i < 100_000; i++) {
                wire.write(i == 0 ? TEXT : CONTINUATION);
                wire.write(0x80 | 1);
                wire.write(new byte[4]);
                wire.write('f');
            }
            final Thread writer = started(() -> {
                try {
                    raw.writeMasked(wire.toByteArray());
                } catch (Exception closedWhileWriting) {
                    // The proxy closes after 1 KiB: the rest cannot be written, as it should be.
                }
            });
            assertThat(raw.awaitCloseCode()).isEqualTo(1009);
            writer.join(10_000);
        }
        assertAudited("strict", "message_too_big", "close", 1009);
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String text && text.startsWith("ffff"));
    }

    @Test
    void frameHeaderClaimingTwoGigabytesIsCutWith1009() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/strict", Map.of())) {
            raw.sendHeader(true, false, TEXT, 1L << 31);
            final byte[] chunk = new byte[4096];
            Arrays.fill(chunk, (byte) 'g');
            final Thread writer = started(() -> {
                try {
                    for (int i = 0; i < 64; i++) {
                        raw.writeMasked(chunk);
                    }
                } catch (Exception closedWhileWriting) {
                    // Expected once the proxy has cut the frame.
                }
            });
            assertThat(raw.awaitCloseCode()).isEqualTo(1009);
            writer.join(10_000);
        }
    }

    @Test
    void deflateBombIsCutAtMaxSizeWith1009OnInspectedAndPlainRoutes() throws Exception {
        final byte[] bomb = deflatedZeros(1L << 30); // 1 GiB of text inflates from about 1 MiB
        assertThat(bomb.length).isLessThan(2 * 1024 * 1024);
        for (String path : List.of("/bomb", "/plain-bomb")) {
            try (RawUpgrade raw =
                    RawUpgrade.send(proxy.port(), path, Map.of("Sec-WebSocket-Extensions", "permessage-deflate"))) {
                assertThat(raw.header("sec-websocket-extensions")).startsWith("permessage-deflate");
                final long heapBefore = usedHeap();
                raw.sendHeader(true, true, TEXT, bomb.length);
                final Thread writer = started(() -> {
                    try {
                        raw.writeMasked(bomb);
                    } catch (Exception closedWhileWriting) {
                        // Expected: the proxy stops reading after maxSize.
                    }
                });
                assertThat(raw.awaitCloseCode()).as(path).isEqualTo(1009);
                writer.join(10_000);
                // The proxy never held the inflated message: far less than the 1 GiB it would take.
                assertThat(usedHeap() - heapBefore).as(path).isLessThan(256L * 1024 * 1024);
            }
        }
        assertAudited("bomb", "message_too_big", "close", 1009);
        assertAudited("plain-bomb", "message_too_big", "close", 1009);
    }

    @Test
    void upstreamsBinaryOnADirectionBothRouteClosesTheUpstreamWith1003AndTheClientWith1014() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/both"));
        upstream.closes().clear();
        ws.send("push-binary:"
                + java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(utf8("from the upstream")));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1014);
        assertThat(ws.messages).isEmpty();
        assertThat(upstream.closes().poll(5, TimeUnit.SECONDS)).startsWith("1003");
        assertAudited("both", "binary_denied", "close", 1014);
    }

    @Test
    void monitorModeRelaysEverythingAndAuditsWhatWouldHaveBeenBlocked() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/watch"));
        ws.send("watch-1");
        assertThat(ws.next()).isEqualTo("watch-1");
        ws.send("watch-2-over-rate");
        assertThat(ws.next()).isEqualTo("watch-2-over-rate");
        ws.session.sendBinary(ByteBuffer.wrap(utf8("watch-binary")), Callback.NOOP);
        assertThat(ws.next()).isInstanceOf(byte[].class);
        final String big = "w".repeat(2000);
        ws.send(big);
        assertThat(ws.next()).isEqualTo(big);
        assertThat(ws.session.isOpen()).isTrue();
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(proxy.auditLines())
                .filteredOn(line -> "watch".equals(line.get("route")))
                .extracting(line -> line.get("reason"))
                .contains("message_rate", "binary_denied", "message_too_big"));
        assertThat(proxy.auditLines())
                .filteredOn(line -> "watch".equals(line.get("route")))
                .allSatisfy(line ->
                        assertThat(line).containsEntry("event", "monitored").containsEntry("action", "none"));
        ws.session.close();
    }

    // ---------------------------------------------------------------- helpers

    private static String token(String subject) {
        return TokenMinter.mint(
                TokenMinter.Options.withSecret(SECRET, subject, Duration.ofMinutes(5)), Clock.systemUTC());
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** permessage-deflate's payload for {@code size} zero bytes: raw deflate without the final empty block's tail. */
    private static byte[] deflatedZeros(long size) {
        final Deflater deflater = new Deflater(Deflater.BEST_COMPRESSION, true);
        final byte[] zeros = new byte[1 << 20];
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final byte[] buffer = new byte[64 * 1024];
        for (long fed = 0; fed < size; fed += zeros.length) {
            deflater.setInput(zeros);
            while (!deflater.needsInput()) {
                out.write(buffer, 0, deflater.deflate(buffer, 0, buffer.length, Deflater.NO_FLUSH));
            }
        }
        int n;
        while ((n = deflater.deflate(buffer, 0, buffer.length, Deflater.SYNC_FLUSH)) > 0) {
            out.write(buffer, 0, n);
            if (n < buffer.length) {
                break;
            }
        }
        deflater.end();
        final byte[] flushed = out.toByteArray();
        return Arrays.copyOf(flushed, flushed.length - 4); // RFC 7692: drop 00 00 ff ff
    }

    private static Thread started(Runnable task) {
        final Thread thread = new Thread(task, "raw-writer");
        thread.setDaemon(true);
        thread.start();
        return thread;
    }

    private static long usedHeap() {
        final Runtime runtime = Runtime.getRuntime();
        return runtime.totalMemory() - runtime.freeMemory();
    }

    /** {@code leg} ended (the sentinel: its frames are read in order, the close last) without carrying {@code text}. */
    private static void assertUpstreamNeverGot(UpstreamServer.Endpoint leg, String text) throws InterruptedException {
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).doesNotContain(text);
    }

    private static void assertUpstreamNeverGot(UpstreamServer.Endpoint leg, byte[] bytes) throws InterruptedException {
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).noneMatch(m -> m instanceof byte[] b && Arrays.equals(b, bytes));
    }

    /**
     * The upstream recorded no text starting with {@code prefix}, and was closed by wsguard (1001)
     * rather than by itself: a real WebSocket server fails invalid UTF-8 with its own 1007 and never
     * records it, so an empty message list alone would not show that the bytes stayed in the proxy.
     * Call after {@code upstream.closes().clear()} at the start of the test.
     */
    private static void assertUpstreamNeverGotInvalidUtf8(String prefix) {
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(upstream.closes())
                .as("wsguard closes the upstream side too")
                .anyMatch(c -> c.startsWith("1001")));
        assertThat(upstream.closes()).noneMatch(c -> c.startsWith("1007"));
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String text && text.startsWith(prefix));
    }

    private static void assertAudited(String route, String reason, String action, int closeCode) {
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", route)
                        .containsEntry("reason", reason)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "message")
                        .containsEntry("action", action)
                        .containsEntry("closeCode", closeCode)));
        assertThat(blockedMetric(route, reason))
                .as("wsguard_blocked_total{route=%s,reason=%s}", route, reason)
                .isGreaterThanOrEqualTo(1);
    }

    private static void assertAuditedWithDetail(
            String route, String reason, String action, int closeCode, String detail) {
        assertAudited(route, reason, action, closeCode);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", route)
                        .containsEntry("reason", reason)
                        .containsEntry("closeCode", closeCode)
                        .containsEntry("detail", detail)));
    }

    private static void ping(TestClient.Recorder ws, String payload) {
        ws.session.sendPing(ByteBuffer.wrap(utf8(payload)), Callback.NOOP);
    }

    private static long countOf(String route, String reason) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> route.equals(line.get("route")) && reason.equals(line.get("reason")))
                .mapToLong(line -> ((Number) line.get("count")).longValue())
                .sum();
    }

    private static double blockedMetric(String route, String reason) {
        final var counter = proxy.server()
                .metrics()
                .registry()
                .find("wsguard.blocked")
                .tag("route", route)
                .tag("reason", reason)
                .counter();
        return counter == null ? 0 : counter.count();
    }
}
