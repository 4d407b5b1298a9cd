package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import io.wsguard.policy.TlsPolicy;
import io.wsguard.server.ProxyServer;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RawUpstreamHandshake;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.SchemaChecked;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import io.wsguard.tls.ServerTls;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The frame pump (issue 18): which connections it relays, and what only a byte-level relay can get
 * wrong: frames that arrive with the upgrade, many frames in one read, a frame cut across reads at
 * every byte, and the upstream getting frames masked with wsguard's own keys.
 */
@Timeout(60)
class FramePumpTest {

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
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: plain
                  match: { path: /plain }
                  upstream: { targets: [%s] }
                  auth: none
                - name: inspected
                  match: { path: /inspected }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { binary: deny }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: [%4$s] }
                  auth: none
                  messages: { maxSize: 1KiB, maxFragments: 2 }
                - name: deflate
                  match: { path: /deflate }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { compression: allow }
                """.formatted(
                                upstream.uri("/plain"),
                                upstream.uri("/inspected"),
                                upstream.uri("/deflate"),
                                upstream.uri("/watch")))
                .extra("admin: { host: 127.0.0.1, port: 0 }\n"));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void aPlainRouteIsPumpedAndARouteWithRulesOrDeflateIsNot() throws Exception {
        final TestClient.Recorder plain = client.connect(proxy.uri("/plain"));
        final TestClient.Recorder inspected = client.connect(proxy.uri("/inspected"));
        final Map<String, String> offer = Map.of("Sec-WebSocket-Extensions", "permessage-deflate");
        final TestClient.Recorder deflate = client.connect(proxy.uri("/deflate"), offer, List.of());
        assertThat(deflate.session.getUpgradeResponse().getHeader("Sec-WebSocket-Extensions"))
                .startsWith("permessage-deflate");
        // The same route without the extension offered: nothing needs Jetty's session, the pump relays it.
        final TestClient.Recorder deflateNotOffered = client.connect(proxy.uri("/deflate"));
        for (TestClient.Recorder ws : List.of(plain, inspected, deflate, deflateNotOffered)) {
            ws.send("ping-pong");
            assertThat(ws.next()).isEqualTo("ping-pong");
        }

        final String connections = admin("/admin/connections");
        assertThat(pathsOf(connections, "plain")).containsExactly("pump");
        assertThat(pathsOf(connections, "inspected")).containsExactly("session");
        assertThat(pathsOf(connections, "deflate")).containsExactlyInAnyOrder("session", "pump");

        final String metrics = admin("/metrics");
        // Other tests of this class open connections on /plain too; the other routes are this test's alone.
        assertThat(metrics)
                .contains("wsguard_connections_opened_total{path=\"pump\",route=\"plain\"} ")
                .doesNotContain("wsguard_connections_opened_total{path=\"session\",route=\"plain\"}")
                .contains("wsguard_connections_opened_total{path=\"session\",route=\"inspected\"} 1.0")
                .doesNotContain("wsguard_connections_opened_total{path=\"pump\",route=\"inspected\"}")
                .contains("wsguard_connections_opened_total{path=\"session\",route=\"deflate\"} 1.0")
                .contains("wsguard_connections_opened_total{path=\"pump\",route=\"deflate\"} 1.0");
        for (TestClient.Recorder ws : List.of(plain, inspected, deflate, deflateNotOffered)) {
            ws.session.close();
            assertThat(ws.awaitClose()).isTrue();
        }
    }

    /**
     * Monitor mode on the pump: a message in more frames than {@code maxFragments} is relayed whole and
     * reported once, as {@code monitored} with no action; the connection stays open.
     */
    @Test
    void monitorModeOnThePumpRelaysWhatIsOverALimitAndReportsIt() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/watch", Map.of())) {
            assertThat(raw.status()).isEqualTo(101);
            final String part = "m".repeat(100);
            raw.sendFrame(false, false, TEXT, part.getBytes(StandardCharsets.UTF_8));
            raw.sendFrame(false, false, CONTINUATION, part.getBytes(StandardCharsets.UTF_8));
            raw.sendFrame(true, false, CONTINUATION, part.getBytes(StandardCharsets.UTF_8));
            assertThat(raw.readTexts(1)).containsExactly(part.repeat(3));
            raw.sendFrame(true, false, TEXT, "still open".getBytes(StandardCharsets.UTF_8));
            assertThat(raw.readTexts(1)).containsExactly("still open");
        }
        org.awaitility.Awaitility.await()
                .atMost(java.time.Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines())
                        .filteredOn(line -> "watch".equals(line.get("route")))
                        .singleElement()
                        .satisfies(line -> assertThat(line)
                                .containsEntry("event", "monitored")
                                .containsEntry("action", "none")
                                .containsEntry("reason", "message_too_big")
                                .containsEntry("detail", "inbound message exceeds maxFragments of 2 frames")));
    }

    /**
     * A client may send frames right behind its upgrade request, before the 101 came back: they are
     * read with the request, and the pump must relay them first, in order.
     */
    @Test
    void framesSentWithTheUpgradeRequestAreRelayedInOrder() throws Exception {
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), proxy.port())) {
            final ByteArrayOutputStream wire = new ByteArrayOutputStream();
            wire.writeBytes(("GET /plain HTTP/1.1\r\nHost: 127.0.0.1:" + proxy.port()
                            + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            for (int i = 0; i < 3; i++) {
                wire.writeBytes(maskedFrame(true, TEXT, ("early-" + i).getBytes(StandardCharsets.UTF_8), 0x11223344));
            }
            socket.getOutputStream().write(wire.toByteArray());
            socket.getOutputStream().flush();
            final DataInputStream in = new DataInputStream(socket.getInputStream());
            assertThat(RawUpstreamHandshake.readHead(in)).startsWith("HTTP/1.1 101");
            for (int i = 0; i < 3; i++) {
                assertThat(readServerText(in)).isEqualTo("early-" + i);
            }
        }
    }

    /**
     * A thousand messages in one write reach the upstream in order, and a message whose frames are
     * written one byte at a time (every header and payload cut at every byte) arrives whole.
     */
    @Test
    void manyFramesInOneReadAndFramesCutAtEveryByteArriveWhole() throws Exception {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/plain", Map.of())) {
            assertThat(raw.status()).isEqualTo(101);
            final List<String> burst = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                burst.add("burst-" + i);
            }
            raw.sendTextBurst(burst);
            assertThat(raw.readTexts(1000)).isEqualTo(burst);

            final byte[] wire = concat(
                    maskedFrame(false, TEXT, "cut-".getBytes(StandardCharsets.UTF_8), 0x01020304),
                    maskedFrame(false, CONTINUATION, new byte[300], 0x0A0B0C0D),
                    maskedFrame(true, CONTINUATION, "-end".getBytes(StandardCharsets.UTF_8), 0x55AA55AA));
            for (byte b : wire) {
                raw.writeRaw(new byte[] {b});
                // Apart in time, so that each byte is a read of its own rather than coalesced.
                TimeUnit.MILLISECONDS.sleep(1);
            }
            assertThat(raw.readTexts(1))
                    .containsExactly("cut-" + new String(new byte[300], StandardCharsets.UTF_8) + "-end");
        }
    }

    /**
     * The upstream gets every client frame masked with a key wsguard drew, a fresh one per frame (RFC
     * 6455 §5.3), never the client's own: a client must not choose the bytes that go on the upstream's
     * wire. Frames the upstream sends right behind its 101 reach the client first.
     */
    @Test
    void theUpstreamGetsFramesMaskedWithWsguardsKeysAndItsEarlyFramesReachTheClient() throws Exception {
        try (ServerSocket rawUpstream = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                RunningProxy own = RunningProxy.start(PolicyText.in(Files.createDirectories(dir.resolve("masks")))
                        .routes("""
                     - name: raw
                       match: { path: /raw }
                       upstream: { targets: ["ws://127.0.0.1:%d/up"] }
                       auth: none
                     """.formatted(rawUpstream.getLocalPort())))) {
            final CompletableFuture<List<int[]>> keysAndPayloads = CompletableFuture.supplyAsync(() -> {
                try (Socket socket = rawUpstream.accept()) {
                    final DataInputStream in = new DataInputStream(socket.getInputStream());
                    final ByteArrayOutputStream answer = new ByteArrayOutputStream();
                    answer.writeBytes(RawUpstreamHandshake.answer(RawUpstreamHandshake.readHead(in)));
                    final OutputStream out = socket.getOutputStream();
                    // In the same write as the 101: the proxy reads it with the answer.
                    answer.writeBytes(new byte[] {(byte) 0x81, 5, 'h', 'e', 'l', 'l', 'o'});
                    out.write(answer.toByteArray());
                    out.flush();
                    final List<int[]> seen = new ArrayList<>();
                    for (int i = 0; i < 3; i++) {
                        final int b0 = in.readUnsignedByte();
                        final int b1 = in.readUnsignedByte();
                        final int length = b1 & 0x7F;
                        final int mask = in.readInt();
                        final byte[] payload = in.readNBytes(length);
                        for (int j = 0; j < length; j++) {
                            payload[j] ^= (byte) (mask >>> (24 - 8 * (j & 3)));
                        }
                        seen.add(new int[] {b0, b1 & 0x80, mask, new String(payload, StandardCharsets.UTF_8).hashCode()
                        });
                    }
                    return seen;
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            try (RawUpgrade raw = RawUpgrade.send(own.port(), "/raw", Map.of())) {
                assertThat(raw.status()).isEqualTo(101);
                assertThat(raw.readTexts(1)).containsExactly("hello");
                // RawUpgrade masks with key 0: the client's bytes are its payload as it is.
                for (String text : List.of("one", "two", "three")) {
                    raw.sendFrame(true, false, TEXT, text.getBytes(StandardCharsets.UTF_8));
                }
                final List<int[]> seen = keysAndPayloads.get(10, TimeUnit.SECONDS);
                final Set<Integer> keys = new HashSet<>();
                final List<String> texts = List.of("one", "two", "three");
                for (int i = 0; i < 3; i++) {
                    assertThat(seen.get(i)[0]).isEqualTo(0x81);
                    assertThat(seen.get(i)[1]).as("masked").isEqualTo(0x80);
                    assertThat(seen.get(i)[3]).isEqualTo(texts.get(i).hashCode());
                    keys.add(seen.get(i)[2]);
                }
                assertThat(keys)
                        .as("a fresh key per frame, none the client's 0")
                        .hasSize(3)
                        .doesNotContain(0);
            }
        }
    }

    /**
     * TLS on both sides (a wss listener, a wss upstream): the pump reads and writes through Jetty's TLS
     * endpoints, in heap buffers, and relays text, a 1 MB binary and pings byte-exact.
     */
    @Test
    void bothSidesOverTlsRelayThroughThePump() throws Exception {
        final Path tlsDir = Files.createDirectories(dir.resolve("tls"));
        final TestCerts.Authority ca = TestCerts.authority(tlsDir, "upstream-ca");
        final TestCerts.Issued cert =
                ca.issue(tlsDir, "upstream", List.of("127.0.0.1"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        try (UpstreamServer tlsUpstream = new UpstreamServer(ServerTls.create(new TlsPolicy(
                List.of(new TlsPolicy.KeyPairPolicy(cert.certificate(), cert.privateKey())),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3", "TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty())))) {
            final DevCerts.DevCertPaths listenerCerts = DevCerts.ensure(tlsDir.resolve("listener"));
            final Path policy = tlsDir.resolve("policy.yaml");
            Files.writeString(
                    policy,
                    """
                    version: 1
                    listeners:
                      - { host: 127.0.0.1, port: 0, tls: { certificate: %s, privateKey: %s } }
                    admin: { host: 127.0.0.1, port: 0 }
                    audit: { sink: file, path: %s }
                    routes:
                      - name: tls
                        match: { path: /tls }
                        upstream: { targets: ["%s"], tls: { trustedCAs: %s } }
                        auth: none
                        messages: { maxSize: 2MiB }
                    """.formatted(
                                    listenerCerts.certificate(),
                                    listenerCerts.privateKey(),
                                    tlsDir.resolve("audit.jsonl"),
                                    tlsUpstream.uri("/echo"),
                                    ca.certificatePath()),
                    StandardCharsets.UTF_8);
            final ProxyServer tlsProxy = new ProxyServer(SchemaChecked.load(policy, Map.of()));
            tlsProxy.start();
            try {
                final TestClient.Recorder ws =
                        client.connect(URI.create("wss://127.0.0.1:" + tlsProxy.port(0) + "/tls"));
                ws.send("over tls ✓");
                assertThat(ws.next()).isEqualTo("over tls ✓");
                final byte[] payload = new byte[1_000_000];
                new java.util.Random(443).nextBytes(payload);
                ws.session.sendBinary(ByteBuffer.wrap(payload), org.eclipse.jetty.websocket.api.Callback.NOOP);
                assertThat((byte[]) ws.next()).isEqualTo(payload);
                ws.session.sendPing(
                        ByteBuffer.wrap(new byte[] {1, 2, 3}), org.eclipse.jetty.websocket.api.Callback.NOOP);
                assertThat(ws.pongs.poll(10, TimeUnit.SECONDS)).containsExactly(1, 2, 3);
                final HttpResponse<String> connections = HttpClient.newHttpClient()
                        .send(
                                HttpRequest.newBuilder(URI.create(tlsProxy.adminUrl() + "/admin/connections"))
                                        .build(),
                                HttpResponse.BodyHandlers.ofString());
                assertThat(pathsOf(connections.body(), "tls")).containsExactly("pump");
                ws.session.close(4000, "bye", org.eclipse.jetty.websocket.api.Callback.NOOP);
                assertThat(ws.awaitClose()).isTrue();
                assertThat(ws.closeCode).isEqualTo(4000);
            } finally {
                tlsProxy.stop();
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private static String admin(String path) throws Exception {
        final HttpResponse<String> response = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + path))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        return response.body();
    }

    /** The {@code path} of each listed connection of {@code route}. */
    private static List<String> pathsOf(String connectionsJson, String route) {
        final List<String> paths = new ArrayList<>();
        for (String entry : connectionsJson.split("\\},\\{", -1)) {
            if (entry.contains("\"route\":\"" + route + "\"")) {
                final int at = entry.indexOf("\"path\":\"") + "\"path\":\"".length();
                paths.add(entry.substring(at, entry.indexOf('"', at)));
            }
        }
        return paths;
    }

    static byte[] maskedFrame(boolean fin, int opcode, byte[] payload, int key) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write((fin ? 0x80 : 0) | opcode);
        if (payload.length < 126) {
            out.write(0x80 | payload.length);
        } else {
            out.write(0x80 | 126);
            out.write(payload.length >>> 8);
            out.write(payload.length & 0xFF);
        }
        for (int shift = 24; shift >= 0; shift -= 8) {
            out.write(key >>> shift);
        }
        for (int i = 0; i < payload.length; i++) {
            out.write(payload[i] ^ (key >>> (24 - 8 * (i & 3))));
        }
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    /** One unmasked TEXT frame from a server, as text. */
    private static String readServerText(DataInputStream in) throws IOException {
        final int b0 = in.readUnsignedByte();
        assertThat(b0).isEqualTo(0x81);
        final int length = in.readUnsignedByte();
        assertThat(length).isLessThan(126);
        return new String(in.readNBytes(length), StandardCharsets.UTF_8);
    }
}
