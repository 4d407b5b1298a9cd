package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * README, Policy file (close codes): a close code reaches the client even while it is still sending, never a bare
 * TCP reset where a CLOSE frame was due. A hand-written client floods small frames and keeps flooding after
 * the violation (or the upstream's death); it must read a CLOSE frame with the right code, 20 times
 * in a row, over ws:// and wss://.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FloodCloseIT {

    private static final int ROUNDS = 20;
    private static final byte[] SMALL = "flood-flood-flood".getBytes(StandardCharsets.UTF_8);

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static SSLContext tls;
    static WsguardProcess plain;
    static WsguardProcess secure;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        upstream.dontRecord();
        final DevCerts.DevCertPaths certs = Tls.certs(dir.resolve("certs"));
        tls = Tls.trusting(certs.caCertificate());
        final String routes = """
                - name: flood
                  match: { path: /flood }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { maxSize: 1KiB }
                """.formatted(upstream.uri("/flood"));
        final Path plainDir = java.nio.file.Files.createDirectories(dir.resolve("plain"));
        final Path secureDir = java.nio.file.Files.createDirectories(dir.resolve("secure"));
        plain = WsguardProcess.start(PolicyText.in(plainDir).routes(routes));
        secure = WsguardProcess.start(PolicyText.in(secureDir)
                .tls(certs.certificate(), certs.privateKey())
                .routes(routes));
    }

    @AfterAll
    static void stop() throws Exception {
        if (plain != null) {
            plain.close();
        }
        if (secure != null) {
            secure.close();
        }
        if (upstream != null) {
            upstream.close();
        }
    }

    private static URI uri(boolean wss) {
        return (wss ? secure : plain).uri("/flood");
    }

    @ParameterizedTest(name = "wss={0}")
    @ValueSource(booleans = {false, true})
    void oversizeWhileFloodingAlwaysGetsClose1009(boolean wss) throws Exception {
        for (int round = 0; round < ROUNDS; round++) {
            final int code = floodThen(uri(wss), ws -> ws.write(RawWebSocket.TEXT, new byte[2048], true));
            assertThat(code).as("round %d over %s", round, wss ? "wss" : "ws").isEqualTo(1009);
        }
    }

    @ParameterizedTest(name = "wss={0}")
    @ValueSource(booleans = {false, true})
    void upstreamDeathWhileFloodingAlwaysGetsClose1014(boolean wss) throws Exception {
        for (int round = 0; round < ROUNDS; round++) {
            final int code = floodThen(
                    uri(wss), ws -> ws.write(RawWebSocket.TEXT, "die".getBytes(StandardCharsets.UTF_8), true));
            assertThat(code).as("round %d over %s", round, wss ? "wss" : "ws").isEqualTo(1014);
        }
    }

    /** What the flooding writer sends once, in the middle of the flood. */
    interface Trigger {
        void send(RawWebSocket ws) throws IOException;
    }

    /**
     * Floods 500 frames, sends the trigger, and goes on flooding until the socket refuses; meanwhile
     * reads until a CLOSE frame. Returns its code; fails if the connection ended without one.
     */
    private static int floodThen(URI uri, Trigger trigger) throws Exception {
        try (RawWebSocket ws = RawWebSocket.connect(uri, tls)) {
            assertThat(ws.status()).isEqualTo(101);
            final AtomicBoolean stop = new AtomicBoolean();
            final Thread writer = new Thread(
                    () -> {
                        try {
                            for (int i = 0; i < 500; i++) {
                                ws.write(RawWebSocket.TEXT, SMALL, true);
                            }
                            trigger.send(ws);
                            ws.flush();
                            while (!stop.get()) {
                                for (int i = 0; i < 50; i++) {
                                    ws.write(RawWebSocket.TEXT, SMALL, true);
                                }
                                ws.flush();
                            }
                        } catch (IOException expected) {
                            // The proxy closed; a write failing is fine, a read failing is not.
                        }
                    },
                    "flooder");
            writer.start();
            try {
                return ws.readUntilClose().closeCode();
            } catch (IOException e) {
                throw new AssertionError("connection ended without a CLOSE frame: " + e, e);
            } finally {
                stop.set(true);
                ws.close();
                writer.join(10_000);
            }
        }
    }
}
