package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RawUpstreamHandshake;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a message's frames cost, provoked from outside with raw frames through a running proxy: a
 * message may come in at most {@code messages.maxFragments} frames on every route (1009), on routes
 * with rates a small frame in the middle of a message counts like a ping (1008), and the frames
 * Jetty's parser refuses are audited like any other refusal. Each test checks the close code, what
 * the upstream received and the audit line.
 */
@Timeout(60)
class FrameLimitsTest {

    private static final int TEXT = 0x1;
    private static final int CONTINUATION = 0x0;

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: plain
                  match: { path: /plain }
                  upstream: { targets: [%1$s] }
                  auth: none
                - name: inspected
                  match: { path: /inspected }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { binary: deny }
                - name: few
                  match: { path: /few }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { maxFragments: 4, deny: [ { name: forbidden, pattern: forbidden } ] }
                - name: few-plain
                  match: { path: /few-plain }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { maxFragments: 4 }
                - name: large
                  match: { path: /large }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { maxSize: 256KiB }
                - name: large-inspected
                  match: { path: /large-inspected }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { maxSize: 256KiB, binary: deny }
                - name: rated
                  match: { path: /rated }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 5 } } }
                - name: rated-drop
                  match: { path: /rated-drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { messages: { perConnection: { rate: 1/min, burst: 3 } }, onExceed: drop }
                - name: bytes
                  match: { path: /bytes }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { bytes: { perConnection: { rate: 1KiB/h, burst: 1KiB } } }
                  messages: { maxSize: 1KiB }
                - name: huge
                  match: { path: /huge }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { maxSize: 64KiB }
                """.formatted(upstream.uri("/echo"))));
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    /**
     * The flood of issue 14: TEXT without FIN, then empty CONTINUATION frames as fast as the socket
     * takes them. On a route without rules (default maxSize 64 KiB, so maxFragments 2048) it was
     * relayed for ever; the 2049th frame now ends it.
     */
    @Test
    void emptyContinuationFloodOnAPlainRouteIsClosedWith1009AtTheDefaultMaxFragments() throws Exception {
        assertFloodClosed("/plain", "plain-flood", 1009);
        assertAuditedWithDetail(
                "plain", "message_too_big", 1009, "inbound message exceeds maxFragments of 2048 frames");
        assertThat(upstream.messages()).noneMatch(m -> String.valueOf(m).startsWith("plain-flood"));
    }

    @Test
    void emptyContinuationFloodOnAnInspectedRouteIsClosedWith1009AtTheDefaultMaxFragments() throws Exception {
        assertFloodClosed("/inspected", "inspected-flood", 1009);
        assertAuditedWithDetail(
                "inspected", "message_too_big", 1009, "inbound message exceeds maxFragments of 2048 frames");
        assertThat(upstream.messages()).noneMatch(m -> String.valueOf(m).startsWith("inspected-flood"));
    }

    /** maxFragments itself: four frames pass whole, five close with 1009; on both relay paths. */
    @Test
    void aMessageInMaxFragmentsFramesPassesAndOneMoreFrameCloses() throws Exception {
        for (String route : List.of("few", "few-plain")) {
            try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/" + route, Map.of())) {
                final String four = route + "-four-";
                sendInFrames(raw, four, 4);
                assertThat(raw.readTexts(1)).as(route).containsExactly(four + "abc");
                final String five = route + "-five-";
                sendInFrames(raw, five, 5);
                assertThat(raw.awaitCloseCode()).as(route).isEqualTo(1009);
                await().atMost(Duration.ofSeconds(5))
                        .until(() -> upstream.messages().contains(four + "abc"));
                assertThat(upstream.messages()).as(route).noneMatch(m -> String.valueOf(m)
                        .startsWith(five));
            }
            assertAuditedWithDetail(route, "message_too_big", 1009, "inbound message exceeds maxFragments of 4 frames");
        }
    }

    /**
     * The default fits the fragmentation Autobahn|Testsuite sends (case 9.3.1: a message of its size in
     * 64-byte frames): maxSize 256 KiB in 4096 frames of 64 bytes reaches the upstream whole.
     */
    @Test
    void aMessageOfMaxSizeIn64ByteFramesPassesUnderTheDefault() throws Exception {
        for (String route : List.of("large", "large-inspected")) {
            try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/" + route, Map.of())) {
                final byte[] chunk = new byte[64];
                final ByteArrayOutputStream wire = new ByteArrayOutputStream();
                final StringBuilder text = new StringBuilder();
                for (int i = 0; i < 4096; i++) {
                    java.util.Arrays.fill(chunk, (byte) ('a' + i % 26));
                    text.append(new String(chunk, StandardCharsets.US_ASCII));
                    frame(wire, i == 4095, i == 0 ? TEXT : CONTINUATION, chunk);
                }
                raw.writeMasked(wire.toByteArray());
                assertThat(raw.readTexts(1)).as(route).containsExactly(text.toString());
                assertThat(upstream.messages()).as(route).contains(text.toString());
            }
        }
    }

    /** Each small frame in the middle of a message takes a message from the rate: the flood meets 1008. */
    @Test
    void emptyContinuationFloodOnARatedRouteIsClosedWith1008AsMessageRate() throws Exception {
        assertFloodClosed("/rated", "rated-flood", 1008);
        assertAuditedWithDetail(
                "rated",
                "message_rate",
                1008,
                "over messages.perConnection (1/min, burst 5) (a fragment under 64 bytes)");
        assertThat(upstream.messages()).noneMatch(m -> String.valueOf(m).startsWith("rated-flood"));
    }

    /**
     * And 64 bytes from the byte rate each: of a burst of 1 KiB, 15 empty frames take 960 and their
     * message's 7 bytes of text 7 more (taken when it ends); the next empty frame finds 57 left.
     */
    @Test
    void emptyContinuationFloodOnAByteRatedRouteIsClosedWith1008AsByteRate() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/bytes", Map.of())) {
            raw.sendFrame(false, false, TEXT, "b".getBytes(StandardCharsets.UTF_8));
            for (int i = 0; i < 15; i++) {
                raw.sendFrame(false, false, CONTINUATION, new byte[0]);
            }
            raw.sendFrame(true, false, CONTINUATION, "yte-ok".getBytes(StandardCharsets.UTF_8));
            assertThat(raw.readTexts(1)).containsExactly("byte-ok");
            raw.sendFrame(false, false, TEXT, "c".getBytes(StandardCharsets.UTF_8));
            raw.sendFrame(false, false, CONTINUATION, new byte[0]);
            assertThat(raw.awaitCloseCode()).isEqualTo(1008);
        }
        assertAuditedWithDetail(
                "bytes",
                "byte_rate",
                1008,
                "over bytes.perConnection (1024/h, burst 1024) (a fragment under 64 bytes)");
        assertThat(upstream.messages()).contains("byte-ok");
    }

    /** With onExceed: drop, the message whose frame went over the rate is dropped whole and the connection stays. */
    @Test
    void aSmallFragmentOverTheRateWithDropDropsItsMessage() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/rated-drop", Map.of())) {
            final UpstreamServer.Endpoint leg = upstream.newest();
            // A burst of 3: the first frame and two small ones take it; the third small one is over.
            raw.sendFrame(false, false, TEXT, "dropped-".getBytes(StandardCharsets.UTF_8));
            for (int i = 0; i < 3; i++) {
                raw.sendFrame(false, false, CONTINUATION, new byte[0]);
            }
            raw.sendFrame(true, false, CONTINUATION, "message".getBytes(StandardCharsets.UTF_8));
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                            .containsEntry("route", "rated-drop")
                            .containsEntry("reason", "message_rate")
                            .containsEntry("event", "blocked")
                            .containsEntry("action", "drop")
                            .containsEntry("closeCode", null)
                            .containsEntry(
                                    "detail",
                                    "over messages.perConnection (1/min, burst 3) (a fragment under 64 bytes)")));
            // The connection goes on: the next message is read and judged (over the rate too, so dropped as well).
            raw.sendFrame(true, false, TEXT, "after-the-drop".getBytes(StandardCharsets.UTF_8));
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(proxy.auditLines().stream()
                            .filter(line ->
                                    "rated-drop".equals(line.get("route")) && "message_rate".equals(line.get("reason")))
                            .mapToLong(line -> ((Number) line.get("count")).longValue())
                            .sum())
                    .isEqualTo(2));
            // Anything more is over the rate too: going away is the sentinel, it ends the upstream leg after the drops.
            raw.close();
            assertThat(leg.awaitEnd()).isTrue();
            assertThat(upstream.messages())
                    .noneMatch(m -> String.valueOf(m).startsWith("dropped-") || "after-the-drop".equals(m));
            assertThat(proxy.auditLines())
                    .filteredOn(line -> "rated-drop".equals(line.get("route")))
                    .allSatisfy(line -> assertThat(line).containsEntry("action", "drop"));
        }
    }

    /**
     * A frame header claiming 2 GiB is refused by Jetty's parser before wsguard sees a frame; that
     * refusal is audited like wsguard's own (issue 14, item 12).
     */
    @Test
    void aFrameHeaderClaimingTwoGigabytesIsAuditedAsMessageTooBig() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/huge", Map.of())) {
            raw.sendHeader(true, false, TEXT, 1L << 31);
            raw.writeMasked("huge-start".getBytes(StandardCharsets.UTF_8));
            assertThat(raw.awaitCloseCode()).isEqualTo(1009);
        }
        assertAuditedWithDetail(
                "huge", "message_too_big", 1009, "inbound frame refused: Frame payload exceeded integer max value");
        assertThat(upstream.messages()).noneMatch(m -> String.valueOf(m).startsWith("huge-start"));
    }

    /** A frame Jetty refuses as a protocol error (a fragmented PING) is audited as protocol_error with Jetty's 1002. */
    @Test
    void aFragmentedPingIsAuditedAsProtocolError() throws Exception {
        upstream.pings().clear();
        final UpstreamServer.Endpoint leg;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/plain", Map.of())) {
            leg = upstream.newest();
            raw.sendFrame(false, false, 0x9, "fragmented-ping".getBytes(StandardCharsets.UTF_8));
            assertThat(raw.awaitCloseCode()).isEqualTo(1002);
        }
        assertAuditedWithDetail(
                "plain", "protocol_error", 1002, "inbound frame refused: Fragmented Control Frame [PING]");
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.pings()).doesNotContain("fragmented-ping");
    }

    /**
     * A CLOSE whose reason is not UTF-8: Jetty answers 1007, audited as invalid_utf8; the upstream gets wsguard's 1001.
     */
    @Test
    void aCloseReasonThatIsNotUtf8IsAuditedAsInvalidUtf8() throws Exception {
        upstream.closes().clear();
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/huge", Map.of())) {
            raw.sendFrame(true, false, 0x8, new byte[] {
                (byte) (1000 >> 8), (byte) (1000 & 0xFF), 'b', 'y', (byte) 0xC3, (byte) 0x28
            });
            assertThat(raw.awaitCloseCode()).isEqualTo(1007);
        }
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", "huge")
                        .containsEntry("reason", "invalid_utf8")
                        .containsEntry("event", "blocked")
                        .containsEntry("action", "close")
                        .containsEntry("closeCode", 1007)
                        .hasEntrySatisfying("detail", detail -> assertThat((String) detail)
                                .startsWith("inbound frame refused: "))));
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(upstream.closes()).anyMatch(c -> c.startsWith("1001")));
        assertThat(upstream.closes()).noneMatch(c -> c.startsWith("1000"));
    }

    /**
     * The upstream breaks the protocol (a frame with the reserved opcode 3): Jetty closes the upstream
     * with 1002, the client gets 1014 (it did nothing wrong), and the refusal is audited.
     */
    @Test
    void aFrameJettyRefusesFromTheUpstreamIsAuditedAndTheClientGets1014() throws Exception {
        try (ServerSocket rawUpstream = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                RunningProxy own = RunningProxy.start(PolicyText.in(Files.createDirectories(dir.resolve("broken")))
                        .routes("""
                     - name: broken
                       match: { path: /broken }
                       upstream: { targets: ["ws://127.0.0.1:%d/up"] }
                       auth: none
                     """.formatted(rawUpstream.getLocalPort())))) {
            final Thread server = new Thread(
                    () -> {
                        try (Socket socket = rawUpstream.accept()) {
                            final OutputStream out = socket.getOutputStream();
                            out.write(RawUpstreamHandshake.answer(
                                    RawUpstreamHandshake.readHead(socket.getInputStream())));
                            out.flush();
                            TimeUnit.MILLISECONDS.sleep(300);
                            // FIN, opcode 3 (reserved), unmasked as a server's frames are, 3 bytes.
                            out.write(new byte[] {(byte) 0x83, 3, 'b', 'a', 'd'});
                            out.flush();
                            socket.getInputStream().readAllBytes();
                        } catch (Exception gone) {
                            // The proxy closed the connection: what the test waits for.
                        }
                    },
                    "raw-upstream");
            server.setDaemon(true);
            server.start();
            try (RawUpgrade raw = RawUpgrade.send(own.port(), "/broken", Map.of())) {
                assertThat(raw.status()).isEqualTo(101);
                assertThat(raw.awaitCloseCode()).isEqualTo(1014);
            }
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(own.auditLines()).anySatisfy(line -> assertThat(line)
                            .containsEntry("route", "broken")
                            .containsEntry("reason", "protocol_error")
                            .containsEntry("event", "blocked")
                            .containsEntry("action", "close")
                            .containsEntry("closeCode", 1014)
                            .containsEntry("detail", "outbound frame refused: Unknown opcode: 3")));
            assertThat(own.auditLines()).noneMatch(line -> "upstream_unavailable".equals(line.get("reason")));
        }
    }

    // ---------------------------------------------------------------- helpers

    /**
     * TEXT {@code marker} without FIN, then up to 100,000 empty CONTINUATION frames written in one go
     * from another thread; the proxy must close with {@code code} while they are still coming.
     */
    private static void assertFloodClosed(String path, String marker, int code) throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), path, Map.of())) {
            final ByteArrayOutputStream wire = new ByteArrayOutputStream();
            frame(wire, false, TEXT, marker.getBytes(StandardCharsets.UTF_8));
            for (int i = 0; i < 100_000; i++) {
                frame(wire, false, CONTINUATION, new byte[0]);
            }
            final Thread writer = new Thread(
                    () -> {
                        try {
                            raw.writeMasked(wire.toByteArray());
                        } catch (IOException closedWhileWriting) {
                            // Expected: the proxy closes long before the last frame.
                        }
                    },
                    "flood-writer");
            writer.setDaemon(true);
            writer.start();
            assertThat(raw.awaitCloseCode()).isEqualTo(code);
            writer.join(10_000);
        }
    }

    /**
     * {@code text} in a TEXT frame without FIN, then {@code frames - 1} frames of one letter each (a, b, c, ...), the
     * last with FIN.
     */
    private static void sendInFrames(RawUpgrade raw, String text, int frames) throws IOException {
        final ByteArrayOutputStream wire = new ByteArrayOutputStream();
        frame(wire, false, TEXT, text.getBytes(StandardCharsets.UTF_8));
        for (int i = 1; i < frames; i++) {
            frame(wire, i == frames - 1, CONTINUATION, new byte[] {(byte) ('a' + i - 1)});
        }
        raw.writeMasked(wire.toByteArray());
    }

    /** One client frame (mask key 0, so the payload goes as it is). */
    private static void frame(ByteArrayOutputStream out, boolean fin, int opcode, byte[] payload) {
        out.write((fin ? 0x80 : 0) | opcode);
        if (payload.length < 126) {
            out.write(0x80 | payload.length);
        } else {
            out.write(0x80 | 126);
            out.write(payload.length >>> 8);
            out.write(payload.length & 0xFF);
        }
        out.writeBytes(new byte[4]);
        out.writeBytes(payload);
    }

    private static void assertAuditedWithDetail(String route, String reason, int closeCode, String detail) {
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", route)
                        .containsEntry("reason", reason)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "message")
                        .containsEntry("action", "close")
                        .containsEntry("closeCode", closeCode)
                        .containsEntry("detail", detail)));
    }
}
