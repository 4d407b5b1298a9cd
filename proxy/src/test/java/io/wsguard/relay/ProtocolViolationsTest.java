package io.wsguard.relay;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RawUpstreamHandshake;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What a plain route (no message rules beyond maxSize and maxFragments) answers to each RFC 6455
 * framing violation, provoked with raw bytes through a running proxy from either side: the close
 * code the client gets, what the upstream saw (nothing of the bad frame, and wsguard's own close),
 * and the audit line. Issue 18's frame pump must give exactly these answers; the cases pin what the
 * session path gives today. {@link FrameLimitsTest} holds four more (a 2 GiB header, a fragmented
 * PING, a close reason that is not UTF-8, a reserved opcode from the upstream).
 *
 * <p>Each case has a route of its own, so that its audit line is told apart by route, and each bad
 * frame carries a marker ({@code bad-ROUTE}) that the far side must never see.
 *
 * <p>Today's answers come from Jetty's parser and session on either leg: a client's violation gets
 * Jetty's code (1002, or 1009 for a length with its top bit set, which Jetty reads as over 2 GiB) and
 * the upstream wsguard's 1001; an upstream's gets Jetty's 1002 on the upstream leg and 1014 for the
 * client. The detail is Jetty's exception message after wsguard's prefix. A TEXT message that is not
 * UTF-8 is not checked on a plain route: the upstream refuses it, and its 1007 reaches the client.
 */
@Timeout(60)
class ProtocolViolationsTest {

    private static final int CONTINUATION = 0x0;
    private static final int TEXT = 0x1;
    private static final int CLOSE = 0x8;
    private static final int PING = 0x9;
    private static final int PONG = 0xA;
    private static final int FIN = 0x80;
    private static final int RSV1 = 0x40;
    private static final int RSV2 = 0x20;
    private static final int RSV3 = 0x10;

    private static final String CONTROL_OVER_125 = "Invalid control frame payload length, [126] cannot exceed [125]";

    /** Changes every byte it masks: a relay that forgot to unmask would garble what the upstream records. */
    private static final byte[] KEY = {0x37, (byte) 0xA5, 0x5C, 0x01};

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RawUpstream rawUpstream;
    static RunningProxy proxy;

    /** A client's violation, the route it is sent on and today's answer. */
    // A test's argument, written to the socket as it is and never compared: equals by array identity is unused.
    @SuppressWarnings("ArrayRecordComponent")
    record ClientCase(String route, byte[] wire, int code, String reason, String detail) {
        @Override
        public String toString() {
            return route;
        }
    }

    /**
     * An upstream's violation (written after the client's "go" reached it), the close code the upstream gets and the
     * message of Jetty's refusal (the audit detail after "outbound frame refused: ").
     */
    // A test's argument, written to the socket as it is and never compared: equals by array identity is unused.
    @SuppressWarnings("ArrayRecordComponent")
    record UpstreamCase(String route, byte[] wire, int upstreamCode, String jettyMessage) {
        @Override
        public String toString() {
            return route;
        }
    }

    static List<ClientCase> clientCases() {
        final List<ClientCase> cases = new ArrayList<>();
        cases.add(protocolError(
                "rsv1-text", clientFrame(FIN | RSV1 | TEXT, marker("rsv1-text")), "RSV1 not allowed to be set"));
        cases.add(protocolError(
                "rsv2-text", clientFrame(FIN | RSV2 | TEXT, marker("rsv2-text")), "RSV2 not allowed to be set"));
        cases.add(protocolError(
                "rsv3-text", clientFrame(FIN | RSV3 | TEXT, marker("rsv3-text")), "RSV3 not allowed to be set"));
        cases.add(protocolError(
                "rsv1-ping",
                clientFrame(FIN | RSV1 | PING, marker("rsv1-ping")),
                "Cannot have RSV1==true on Control frames"));
        cases.add(protocolError("opcode-3", clientFrame(FIN | 0x3, marker("opcode-3")), "Unknown opcode: 3"));
        cases.add(protocolError("opcode-b", clientFrame(FIN | 0xB, marker("opcode-b")), "Unknown opcode: 11"));
        cases.add(
                protocolError("ping-126", clientFrame(FIN | PING, padded(marker("ping-126"), 126)), CONTROL_OVER_125));
        cases.add(protocolError(
                "close-126",
                clientFrame(FIN | CLOSE, closePayload(1000, padded("bad-close-126", 124))),
                CONTROL_OVER_125));
        cases.add(protocolError(
                "continuation-first",
                clientFrame(FIN | CONTINUATION, marker("continuation-first")),
                "CONTINUATION after fin==true"));
        final ByteArrayOutputStream nested = new ByteArrayOutputStream();
        clientFrame(nested, TEXT, marker("text-in-fragmented"));
        clientFrame(nested, FIN | TEXT, marker("text-in-fragmented"));
        cases.add(protocolError("text-in-fragmented", nested.toByteArray(), "DataFrame before fin==true"));
        cases.add(protocolError(
                "unmasked",
                serverFrame(FIN | TEXT, marker("unmasked")),
                "Client MUST mask all frames (RFC-6455: Section 5.1)"));
        // A 64-bit length with its top bit set (RFC 6455 §5.2: the most significant bit must be 0), then a few bytes.
        final ByteArrayOutputStream topBit = new ByteArrayOutputStream();
        topBit.write(FIN | TEXT);
        topBit.write(0x80 | 127);
        topBit.writeBytes(new byte[] {(byte) 0x80, 0, 0, 0, 0, 0, 0, 16});
        topBit.writeBytes(KEY);
        topBit.writeBytes(masked(marker("length-top-bit")));
        // Jetty reads the length as a long over Integer.MAX_VALUE and answers as for a 2 GiB frame: 1009, not 1002.
        cases.add(new ClientCase(
                "length-top-bit",
                topBit.toByteArray(),
                1009,
                "message_too_big",
                "inbound frame refused: Frame payload exceeded integer max value"));
        cases.add(protocolError("close-1-byte", clientFrame(FIN | CLOSE, new byte[] {0x03}), "Invalid CLOSE payload"));
        for (int code : new int[] {999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
            final String route = "close-" + code;
            cases.add(protocolError(
                    route,
                    clientFrame(FIN | CLOSE, closePayload(code, "bad-" + route)),
                    "Invalid CLOSE Code: " + code));
        }
        return cases;
    }

    static List<UpstreamCase> upstreamCases() {
        final ByteArrayOutputStream maskedFrame = new ByteArrayOutputStream();
        clientFrame(maskedFrame, FIN | TEXT, marker("upstream-masked"));
        return List.of(
                new UpstreamCase(
                        "upstream-masked",
                        maskedFrame.toByteArray(),
                        1002,
                        "Server MUST NOT mask any frames (RFC-6455: Section 5.1)"),
                new UpstreamCase(
                        "upstream-rsv1",
                        serverFrame(FIN | RSV1 | TEXT, marker("upstream-rsv1")),
                        1002,
                        "RSV1 not allowed to be set"),
                new UpstreamCase(
                        "upstream-continuation-first",
                        serverFrame(FIN | CONTINUATION, marker("upstream-continuation-first")),
                        1002,
                        "CONTINUATION after fin==true"),
                new UpstreamCase(
                        "upstream-ping-126",
                        serverFrame(FIN | PING, padded(marker("upstream-ping-126"), 126)),
                        1002,
                        CONTROL_OVER_125),
                new UpstreamCase(
                        "upstream-close-1005",
                        serverFrame(FIN | CLOSE, closePayload(1005, "bad-upstream-close-1005")),
                        1002,
                        "Invalid CLOSE Code: 1005"),
                new UpstreamCase(
                        "upstream-close-5000",
                        serverFrame(FIN | CLOSE, closePayload(5000, "bad-upstream-close-5000")),
                        1002,
                        "Invalid CLOSE Code: 5000"));
    }

    /** Jetty's 1002 and its message, after wsguard's prefix. */
    private static ClientCase protocolError(String route, byte[] wire, String jettyMessage) {
        return new ClientCase(route, wire, 1002, "protocol_error", "inbound frame refused: " + jettyMessage);
    }

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        rawUpstream = new RawUpstream(
                upstreamCases().stream().collect(Collectors.toMap(c -> "/" + c.route(), UpstreamCase::wire)));
        final StringBuilder routes = new StringBuilder();
        Stream.concat(
                        clientCases().stream().map(ClientCase::route),
                        Stream.of("text-not-utf8", "ping", "close-3000", "close-4999"))
                .forEach(route ->
                        routes.append(route(route, upstream.uri("/echo").toString(), "")));
        routes.append(route("sized", upstream.uri("/echo").toString(), "{ maxSize: 1KiB }"));
        routes.append(route("fragments", upstream.uri("/echo").toString(), "{ maxFragments: 2 }"));
        routes.append(route("burst", "ws://127.0.0.1:" + rawUpstream.port() + "/burst", ""));
        upstreamCases()
                .forEach(c ->
                        routes.append(route(c.route(), "ws://127.0.0.1:" + rawUpstream.port() + "/" + c.route(), "")));
        proxy = RunningProxy.start(PolicyText.in(dir).routes(routes.toString()));
    }

    private static String route(String name, String target, String messages) {
        return """
                - name: %1$s
                  match: { path: /%1$s }
                  upstream: { targets: ["%2$s"] }
                  auth: none
                """.formatted(name, target) + (messages.isEmpty() ? "" : "  messages: " + messages + "\n");
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        upstream.close();
        rawUpstream.close();
    }

    // ---------------------------------------------------------------- client → proxy

    @ParameterizedTest(name = "{0}")
    @MethodSource("clientCases")
    void aClientFrameBreakingTheProtocolClosesTheClientAndTheUpstreamNeverSeesIt(ClientCase c) throws Exception {
        final UpstreamServer.Endpoint leg;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/" + c.route(), Map.of())) {
            assertThat(raw.status()).isEqualTo(101);
            leg = upstream.newest();
            raw.writeMasked(c.wire());
            assertThat(raw.awaitCloseCode()).isEqualTo(c.code());
        }
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(leg.closeStatus()).isEqualTo("1001 going away");
        assertUpstreamNeverSaw("bad-" + c.route());
        assertRefusalAudited(c.route(), c.reason(), c.code(), c.detail());
    }

    /** Close codes 3000–4999 are for applications: relayed as they are, both ways, with their reasons. */
    @ParameterizedTest
    @ValueSource(ints = {3000, 4999})
    void aCloseWithAnApplicationCodeIsRelayedBothWays(int code) throws Exception {
        final String route = "close-" + code;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/" + route, Map.of())) {
            final UpstreamServer.Endpoint leg = upstream.newest();
            raw.writeMasked(clientFrame(FIN | CLOSE, closePayload(code, "done-" + code)));
            final RawUpgrade.ServerFrame reply = next(raw, CLOSE);
            assertThat(leg.awaitEnd()).isTrue();
            assertThat(leg.closeStatus()).isEqualTo(code + " done-" + code);
            assertThat(closeCode(reply.payload())).isEqualTo(code);
            assertThat(closeReason(reply.payload())).isEqualTo("done-" + code);
        }
        assertThat(blocked(route)).isEmpty();
    }

    /**
     * Many frames in one TCP write, the bad one (RSV2) last: the good ones before it are relayed, the bad one is not.
     * The upstream is a raw one that never writes: wsguard sends the upstream 1001 and closes the connection at once
     * (Jetty does so after any CLOSE code but 1000), so an upstream that is still echoing meets a reset, which may
     * throw away the frames it has not read yet.
     */
    @Test
    void goodFramesBeforeABadOneInTheSameWriteAreRelayed() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/burst", Map.of())) {
            final ByteArrayOutputStream wire = new ByteArrayOutputStream();
            clientFrame(wire, FIN | TEXT, "burst-1".getBytes(UTF_8));
            clientFrame(wire, TEXT, "burst-".getBytes(UTF_8));
            clientFrame(wire, FIN | CONTINUATION, "2".getBytes(UTF_8));
            clientFrame(wire, FIN | PING, "burst-ping".getBytes(UTF_8));
            clientFrame(wire, FIN | TEXT, "burst-3".getBytes(UTF_8));
            clientFrame(wire, FIN | RSV2 | TEXT, marker("burst"));
            raw.writeMasked(wire.toByteArray());
            assertThat(raw.awaitCloseCode()).isEqualTo(1002);
        }
        assertThat(rawUpstream.closeOf("/burst").get(10, TimeUnit.SECONDS)).isEqualTo(1001);
        assertThat(rawUpstream.receivedOn("/burst"))
                .containsExactly("text:burst-1", "text:burst-2", "ping:burst-ping", "text:burst-3");
        assertRefusalAudited("burst", "protocol_error", 1002, "inbound frame refused: RSV2 not allowed to be set");
    }

    /**
     * maxSize counts a message across its frames: 1 KiB in three frames of 400 bytes closes with 1009 at the third,
     * and the upstream never gets the message.
     */
    @Test
    void maxSizeCountsAcrossFragments() throws Exception {
        final UpstreamServer.Endpoint leg;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/sized", Map.of())) {
            leg = upstream.newest();
            final String whole = "sized-whole-" + "w".repeat(1000);
            raw.writeMasked(clientFrame(FIN | TEXT, whole.getBytes(UTF_8)));
            assertThat(raw.readTexts(1)).containsExactly(whole);
            final ByteArrayOutputStream wire = new ByteArrayOutputStream();
            clientFrame(wire, TEXT, padded(marker("sized"), 400));
            clientFrame(wire, CONTINUATION, padded("", 400));
            clientFrame(wire, FIN | CONTINUATION, padded("", 400));
            raw.writeMasked(wire.toByteArray());
            assertThat(raw.awaitCloseCode()).isEqualTo(1009);
        }
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(leg.closeStatus()).isEqualTo("1001 going away");
        assertUpstreamNeverSaw("bad-sized");
        assertRefusalAudited("sized", "message_too_big", 1009, "inbound message exceeds maxSize of 1024 bytes");
    }

    /** maxFragments 2: a message in two frames passes, one in three closes with 1009 and never reaches the upstream. */
    @Test
    void maxFragmentsCountsTheFramesOfAMessage() throws Exception {
        final UpstreamServer.Endpoint leg;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/fragments", Map.of())) {
            leg = upstream.newest();
            final ByteArrayOutputStream two = new ByteArrayOutputStream();
            clientFrame(two, TEXT, "fragments-".getBytes(UTF_8));
            clientFrame(two, FIN | CONTINUATION, "two".getBytes(UTF_8));
            raw.writeMasked(two.toByteArray());
            assertThat(raw.readTexts(1)).containsExactly("fragments-two");
            final ByteArrayOutputStream three = new ByteArrayOutputStream();
            clientFrame(three, TEXT, marker("fragments"));
            clientFrame(three, CONTINUATION, "a".getBytes(UTF_8));
            clientFrame(three, FIN | CONTINUATION, "b".getBytes(UTF_8));
            raw.writeMasked(three.toByteArray());
            assertThat(raw.awaitCloseCode()).isEqualTo(1009);
        }
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(leg.closeStatus()).isEqualTo("1001 going away");
        assertThat(upstream.messages()).contains("fragments-two");
        assertUpstreamNeverSaw("bad-fragments");
        assertRefusalAudited("fragments", "message_too_big", 1009, "inbound message exceeds maxFragments of 2 frames");
    }

    /**
     * A TEXT message that is not UTF-8: a plain route does not check it today. The frame is relayed, the upstream's
     * own WebSocket stack refuses it with 1007, and that CLOSE reaches the client as the upstream's; wsguard audits
     * no refusal.
     */
    @Test
    void aTextMessageThatIsNotUtf8IsRelayedAndTheUpstreamsRefusalReachesTheClient() throws Exception {
        final UpstreamServer.Endpoint leg;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/text-not-utf8", Map.of())) {
            leg = upstream.newest();
            final ByteArrayOutputStream payload = new ByteArrayOutputStream();
            payload.writeBytes("not-utf8-".getBytes(UTF_8));
            payload.writeBytes(new byte[] {(byte) 0xC3, 0x28});
            raw.writeMasked(clientFrame(FIN | TEXT, payload.toByteArray()));
            final RawUpgrade.ServerFrame close = next(raw, CLOSE);
            assertThat(closeCode(close.payload())).isEqualTo(1007);
            assertThat(closeReason(close.payload())).isEqualTo("Invalid UTF-8");
        }
        assertThat(leg.awaitEnd()).isTrue();
        // The upstream's Jetty reports the bad payload as an error first (which ends the leg), then its close.
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(leg.closeStatus()).isEqualTo("1007 Invalid UTF-8"));
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String text && text.startsWith("not-utf8-"));
        assertThat(blocked("text-not-utf8")).isEmpty();
    }

    /**
     * Pings and pongs pass through both ways: the client's PING reaches the upstream and its PONG comes back; the
     * upstream's PING reaches the client and the client's PONG reaches the upstream; so does an unsolicited PONG.
     */
    @Test
    void pingsAndPongsPassThroughBothWays() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/ping", Map.of())) {
            final UpstreamServer.Endpoint leg = upstream.newest();
            raw.writeMasked(clientFrame(FIN | PING, "ping-from-client".getBytes(UTF_8)));
            assertThat(new String(next(raw, PONG).payload(), UTF_8)).isEqualTo("ping-from-client");
            assertThat(upstream.pings()).contains("ping-from-client");

            raw.writeMasked(clientFrame(FIN | TEXT, ("push-ping:" + base64Url("ping-from-upstream")).getBytes(UTF_8)));
            assertThat(new String(next(raw, PING).payload(), UTF_8)).isEqualTo("ping-from-upstream");
            raw.writeMasked(clientFrame(FIN | PONG, "ping-from-upstream".getBytes(UTF_8)));
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(upstream.pongs()).contains("ping-from-upstream"));

            raw.writeMasked(clientFrame(FIN | TEXT, ("push-pong:" + base64Url("pong-from-upstream")).getBytes(UTF_8)));
            assertThat(new String(next(raw, PONG).payload(), UTF_8)).isEqualTo("pong-from-upstream");
            raw.writeMasked(clientFrame(FIN | PONG, "pong-from-client".getBytes(UTF_8)));
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(upstream.pongs()).contains("pong-from-client"));

            raw.writeMasked(clientFrame(FIN | CLOSE, closePayload(1000, "")));
            assertThat(closeCode(next(raw, CLOSE).payload())).isEqualTo(1000);
            assertThat(leg.awaitEnd()).isTrue();
        }
        assertThat(blocked("ping")).isEmpty();
    }

    // ---------------------------------------------------------------- upstream → proxy

    @ParameterizedTest(name = "{0}")
    @MethodSource("upstreamCases")
    void anUpstreamFrameBreakingTheProtocolClosesTheClientWith1014(UpstreamCase c) throws Exception {
        final List<RawUpgrade.ServerFrame> before = new ArrayList<>();
        final int code;
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/" + c.route(), Map.of())) {
            assertThat(raw.status()).isEqualTo(101);
            raw.writeMasked(clientFrame(FIN | TEXT, "go".getBytes(UTF_8)));
            RawUpgrade.ServerFrame frame = raw.readFrame();
            while (frame.opcode() != CLOSE) {
                before.add(frame);
                frame = raw.readFrame();
            }
            code = closeCode(frame.payload());
        }
        assertThat(code).isEqualTo(1014);
        assertThat(before).as("frames the client got before the close").isEmpty();
        assertThat(rawUpstream.closeOf("/" + c.route()).get(10, TimeUnit.SECONDS))
                .as("the close the upstream got")
                .isEqualTo(c.upstreamCode());
        assertRefusalAudited(c.route(), "protocol_error", 1014, "outbound frame refused: " + c.jettyMessage());
    }

    // ---------------------------------------------------------------- helpers

    /** Reads frames until one with {@code opcode}; a CLOSE on the way (when not asked for) fails the test. */
    private static RawUpgrade.ServerFrame next(RawUpgrade raw, int opcode) throws IOException {
        while (true) {
            final RawUpgrade.ServerFrame frame = raw.readFrame();
            if (frame.opcode() == opcode) {
                return frame;
            }
            assertThat(frame.opcode())
                    .as("a CLOSE while waiting for opcode " + opcode)
                    .isNotEqualTo(CLOSE);
        }
    }

    /** Once the upstream leg has ended, nothing it recorded carries {@code marker}. */
    private static void assertUpstreamNeverSaw(String marker) {
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String text && text.contains(marker));
        assertThat(upstream.pings()).noneMatch(p -> p.contains(marker));
        assertThat(upstream.pongs()).noneMatch(p -> p.contains(marker));
        assertThat(upstream.closes()).noneMatch(c -> c.contains(marker));
    }

    private static void assertRefusalAudited(String route, String reason, int closeCode, String detail) {
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(blocked(route)).singleElement().satisfies(line -> assertThat(line)
                        .containsEntry("reason", reason)
                        .containsEntry("stage", "message")
                        .containsEntry("action", "close")
                        .containsEntry("closeCode", closeCode)
                        .containsEntry("detail", detail)));
    }

    /** The audit lines of {@code route}'s refusals. */
    private static List<Map<String, Object>> blocked(String route) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> route.equals(line.get("route")) && "blocked".equals(line.get("event")))
                .toList();
    }

    private static byte[] marker(String route) {
        return ("bad-" + route).getBytes(UTF_8);
    }

    /** {@code text} then 'x' up to {@code length} bytes. */
    private static byte[] padded(String text, int length) {
        return padded(text.getBytes(UTF_8), length);
    }

    private static byte[] padded(byte[] start, int length) {
        final byte[] out = Arrays.copyOf(start, length);
        Arrays.fill(out, start.length, length, (byte) 'x');
        return out;
    }

    private static byte[] closePayload(int code, String reason) {
        return closePayload(code, reason.getBytes(UTF_8));
    }

    private static byte[] closePayload(int code, byte[] reason) {
        final byte[] payload = new byte[2 + reason.length];
        payload[0] = (byte) (code >>> 8);
        payload[1] = (byte) code;
        System.arraycopy(reason, 0, payload, 2, reason.length);
        return payload;
    }

    private static int closeCode(byte[] payload) {
        return payload.length >= 2 ? ((payload[0] & 0xFF) << 8) | (payload[1] & 0xFF) : 1005;
    }

    private static String closeReason(byte[] payload) {
        return payload.length > 2 ? new String(payload, 2, payload.length - 2, UTF_8) : "";
    }

    private static String base64Url(String text) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(text.getBytes(UTF_8));
    }

    /** One client frame: first byte {@code b0} as given (FIN, RSV bits, opcode), masked with {@link #KEY}. */
    private static byte[] clientFrame(int b0, byte[] payload) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        clientFrame(out, b0, payload);
        return out.toByteArray();
    }

    private static void clientFrame(ByteArrayOutputStream out, int b0, byte[] payload) {
        header(out, b0, true, payload.length);
        out.writeBytes(KEY);
        out.writeBytes(masked(payload));
    }

    /** One frame without a mask, as servers send them (and as a client must not). */
    private static byte[] serverFrame(int b0, byte[] payload) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        header(out, b0, false, payload.length);
        out.writeBytes(payload);
        return out.toByteArray();
    }

    private static void header(ByteArrayOutputStream out, int b0, boolean masked, int length) {
        out.write(b0);
        final int mask = masked ? 0x80 : 0;
        if (length < 126) {
            out.write(mask | length);
        } else {
            out.write(mask | 126);
            out.write(length >>> 8);
            out.write(length & 0xFF);
        }
    }

    private static byte[] masked(byte[] payload) {
        final byte[] out = new byte[payload.length];
        for (int i = 0; i < payload.length; i++) {
            out[i] = (byte) (payload[i] ^ KEY[i & 3]);
        }
        return out;
    }

    /**
     * An upstream that answers the upgrade by hand, waits for the client's text "go" (so that both sides are open
     * and relaying), then writes the bytes its path was given: frames a real server never sends. It records the
     * texts and pings it receives and the code of the close the proxy sends it, -1 when the connection ends without
     * one. It writes nothing else, so nothing of its own is in flight when the proxy drops the connection.
     */
    private static final class RawUpstream implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        private final Map<String, byte[]> scripts;
        private final Map<String, CompletableFuture<Integer>> closes = new ConcurrentHashMap<>();
        private final Map<String, List<String>> received = new ConcurrentHashMap<>();

        RawUpstream(Map<String, byte[]> scripts) throws IOException {
            this.scripts = scripts;
            final Thread acceptor = new Thread(this::acceptAll, "raw-upstream");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        int port() {
            return server.getLocalPort();
        }

        CompletableFuture<Integer> closeOf(String path) {
            return closes.computeIfAbsent(path, p -> new CompletableFuture<>());
        }

        /** What came on {@code path}'s connection: "text:MESSAGE" (fragments joined) and "ping:PAYLOAD", in order. */
        List<String> receivedOn(String path) {
            return received.computeIfAbsent(path, p -> new CopyOnWriteArrayList<>());
        }

        private void acceptAll() {
            while (!server.isClosed()) {
                try {
                    final Socket socket = server.accept();
                    final Thread connection = new Thread(() -> serve(socket), "raw-upstream-connection");
                    connection.setDaemon(true);
                    connection.start();
                } catch (IOException closed) {
                    return; // close() closed the server socket
                }
            }
        }

        private void serve(Socket socket) {
            String path = null;
            try (socket) {
                socket.setSoTimeout(15_000);
                final InputStream in = socket.getInputStream();
                final OutputStream out = socket.getOutputStream();
                final String head = RawUpstreamHandshake.readHead(in);
                path = head.split("\r\n", -1)[0].split(" ", -1)[1];
                out.write(RawUpstreamHandshake.answer(head));
                out.flush();
                final DataInputStream frames = new DataInputStream(in);
                final List<String> seen = receivedOn(path);
                final ByteArrayOutputStream message = new ByteArrayOutputStream();
                while (true) {
                    final int b0 = frames.readUnsignedByte();
                    final int b1 = frames.readUnsignedByte();
                    long length = b1 & 0x7F;
                    if (length == 126) {
                        length = frames.readUnsignedShort();
                    } else if (length == 127) {
                        length = frames.readLong();
                    }
                    final byte[] mask = new byte[4];
                    if ((b1 & 0x80) != 0) {
                        frames.readFully(mask);
                    }
                    final byte[] payload = new byte[(int) length];
                    frames.readFully(payload);
                    for (int i = 0; i < payload.length; i++) {
                        payload[i] ^= mask[i & 3];
                    }
                    final int opcode = b0 & 0x0F;
                    if (opcode == TEXT || opcode == CONTINUATION) {
                        message.writeBytes(payload);
                        if ((b0 & FIN) != 0) {
                            seen.add("text:" + message.toString(UTF_8));
                            message.reset();
                        }
                    } else if (opcode == PING) {
                        seen.add("ping:" + new String(payload, UTF_8));
                    }
                    if (opcode == TEXT && "go".equals(new String(payload, UTF_8)) && scripts.containsKey(path)) {
                        out.write(scripts.get(path));
                        out.flush();
                    } else if (opcode == CLOSE) {
                        closeOf(path).complete(closeCode(payload));
                        out.write(serverFrame(FIN | CLOSE, Arrays.copyOf(payload, Math.min(2, payload.length))));
                        out.flush();
                        return;
                    }
                }
            } catch (Exception gone) {
                // The proxy dropped the connection (or the test ended): recorded as no close.
                if (path != null) {
                    closeOf(path).complete(-1);
                }
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
