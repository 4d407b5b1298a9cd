package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import io.wsguard.testing.SchemaChecked;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * SPEC §3 {@code proxy.handshakeTimeout}: slow or incomplete handshakes are cut. A client that
 * trickles its request headers or its TLS ClientHello a byte at a time never lets the idle timeout
 * fire; it must still be closed once the handshake timeout has passed since the accept, while
 * upgraded connections live on.
 */
@Timeout(60)
class HandshakeTimeoutTest {

    /** Well under the 1 s handshake timeout: the idle timeout alone would never fire. */
    private static final long TRICKLE_MILLIS = 150;

    @TempDir
    Path dir;

    private UpstreamServer upstream;
    private ProxyServer proxy;

    @BeforeEach
    void start() throws Exception {
        upstream = new UpstreamServer();
        final DevCerts.DevCertPaths certs = DevCerts.ensure(dir.resolve("certs"));
        final Path policy = dir.resolve("policy.yaml");
        Files.writeString(
                policy,
                """
                version: 1
                listeners:
                  - { host: 127.0.0.1, port: 0 }
                  - { host: 127.0.0.1, port: 0, tls: { certificate: %s, privateKey: %s } }
                admin: { host: 127.0.0.1, port: 0 }
                audit: { sink: file, path: %s }
                proxy: { handshakeTimeout: 1s }
                routes:
                  - name: chat
                    match: { path: /chat }
                    upstream: { targets: [%s] }
                    auth: none
                """.formatted(
                        certs.certificate(), certs.privateKey(), dir.resolve("audit.jsonl"), upstream.uri("/chat")),
                StandardCharsets.UTF_8);
        proxy = new ProxyServer(SchemaChecked.load(policy, Map.of()));
        proxy.start();
    }

    @AfterEach
    void stop() throws Exception {
        proxy.stop();
        upstream.close();
    }

    @Test
    void requestHeadersTrickledByteByByteAreCut() throws Exception {
        final byte[] request = ("GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        + "X-Padding: " + "a".repeat(200) + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII);
        assertThat(trickleUntilClosed(proxy.port(0), request))
                .as("closed by the proxy before the request was complete")
                .isTrue();
        assertThat(upstream.upgrades()).isZero();
        assertThat(metrics()).containsPattern("(?m)^wsguard_handshake_timeouts_total(\\{[^}]*})? 1\\.0$");
    }

    @Test
    void aTlsClientHelloTrickledByteByByteIsCut() throws Exception {
        // The start of a TLS record claiming a 512-byte handshake message, then filler: the record
        // is never complete, so TLS itself never fails it.
        final byte[] hello = new byte[5 + 512];
        hello[0] = 0x16;
        hello[1] = 0x03;
        hello[2] = 0x01;
        hello[3] = 0x02;
        hello[4] = 0x00;
        assertThat(trickleUntilClosed(proxy.port(1), hello))
                .as("closed by the proxy mid-ClientHello")
                .isTrue();
        assertThat(upstream.upgrades()).isZero();
        assertThat(metrics()).containsPattern("(?m)^wsguard_handshake_timeouts_total(\\{[^}]*})? 1\\.0$");
    }

    @Test
    void upgradedConnectionsOutliveTheHandshakeTimeout() throws Exception {
        try (TestClient client = new TestClient()) {
            final TestClient.Recorder plain = client.connect(URI.create("ws://127.0.0.1:" + proxy.port(0) + "/chat"));
            final TestClient.Recorder tls = client.connect(URI.create("wss://127.0.0.1:" + proxy.port(1) + "/chat"));
            Thread.sleep(2_000);
            plain.send("still open over ws");
            tls.send("still open over wss");
            assertThat(plain.next()).isEqualTo("still open over ws");
            assertThat(tls.next()).isEqualTo("still open over wss");
            assertThat(metrics()).containsPattern("(?m)^wsguard_handshake_timeouts_total(\\{[^}]*})? 0\\.0$");
        }
    }

    /**
     * Writes {@code bytes} one at a time, {@link #TRICKLE_MILLIS} apart, and reports whether the
     * proxy closed the socket before all were written (or within 10 s).
     */
    private static boolean trickleUntilClosed(int port, byte[] bytes) throws IOException {
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
            socket.setSoTimeout((int) TRICKLE_MILLIS);
            final OutputStream out = socket.getOutputStream();
            final InputStream in = socket.getInputStream();
            final long giveUp = System.nanoTime() + 10_000_000_000L;
            for (int i = 0; i < bytes.length && System.nanoTime() - giveUp < 0; i++) {
                try {
                    out.write(bytes[i]);
                    out.flush();
                    if (in.read() == -1) {
                        return true;
                    }
                } catch (SocketTimeoutException stillOpen) {
                    // Nothing to read yet: the proxy is still waiting for the rest.
                } catch (IOException closed) {
                    return true;
                }
            }
            return false;
        }
    }

    private String metrics() throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create(proxy.adminUrl() + "/metrics"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString())
                .body();
    }
}
