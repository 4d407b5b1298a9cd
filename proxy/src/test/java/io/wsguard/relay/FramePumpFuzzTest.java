package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.ByteArrayOutputStream;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random damage to valid frame streams, sent through the frame pump from a raw socket, while a clean
 * connection relays random binary messages next to them on the same selector threads: every damaged
 * connection ends with a protocol close code (or waits for bytes a damaged header promised), the
 * clean one never sees a byte of anyone else's, and the proxy relays as before afterwards.
 */
@Timeout(120)
class FramePumpFuzzTest {

    /** What a damaged stream may end with: the echo of our CLOSE, or a refusal (the upstream's 1007 included). */
    private static final Set<Integer> CLOSE_CODES = Set.of(1000, 1002, 1007, 1009);

    private static final int SEEDS = 80;

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        upstream.dontRecord();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: fuzz
                  match: { path: /fuzz }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { maxSize: 64KiB }
                """.formatted(upstream.uri("/fuzz"))));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void damagedStreamsEndInAProtocolCloseAndNeverTouchAnotherConnection() throws Exception {
        final TestClient.Recorder clean = client.connect(proxy.uri("/fuzz"));
        final AtomicBoolean fuzzing = new AtomicBoolean(true);
        final AtomicReference<Throwable> cleanFailure = new AtomicReference<>();
        final AtomicInteger cleanEchoes = new AtomicInteger();
        final Thread cleanTraffic = new Thread(() -> {
            final Random random = new Random(42);
            try {
                while (fuzzing.get()) {
                    final byte[] payload = new byte[1 + random.nextInt(20_000)];
                    random.nextBytes(payload);
                    clean.session.sendBinary(ByteBuffer.wrap(payload), Callback.NOOP);
                    assertThat((byte[]) clean.next()).isEqualTo(payload);
                    cleanEchoes.incrementAndGet();
                }
            } catch (Throwable failure) {
                cleanFailure.set(failure);
            }
        });
        cleanTraffic.start();

        int refused = 0;
        for (int seed = 0; seed < SEEDS; seed++) {
            final Random random = new Random(seed);
            final byte[] wire = damaged(frames(random, seed), random);
            try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/fuzz", Map.of())) {
                assertThat(raw.status()).isEqualTo(101);
                raw.readTimeout(Duration.ofSeconds(1));
                raw.writeRaw(wire);
                final int code;
                try {
                    code = raw.awaitCloseCode();
                } catch (SocketTimeoutException waiting) {
                    // A damaged length promised more bytes than came: the pump waits for them, as a parser must.
                    continue;
                }
                assertThat(code).as("seed %d", seed).isIn(CLOSE_CODES);
                if (code != 1000) {
                    refused++;
                }
            }
        }
        fuzzing.set(false);
        cleanTraffic.join(10_000);
        assertThat(cleanFailure.get()).as("the clean connection's echoes").isNull();
        assertThat(cleanEchoes.get()).isPositive();
        assertThat(refused).as("damage was refused, not only relayed").isPositive();

        final TestClient.Recorder after = client.connect(proxy.uri("/fuzz"));
        after.send("still relaying");
        assertThat(after.next()).isEqualTo("still relaying");
        assertThat(proxy.auditLines()).allSatisfy(line -> assertThat(line.get("reason"))
                .isIn("protocol_error", "message_too_big", "invalid_utf8"));
        clean.session.close();
        after.session.close();
    }

    /** A valid stream: texts, binaries, fragmented messages with pings between, then a CLOSE 1000. */
    private static byte[] frames(Random random, int seed) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < 20; i++) {
            switch (random.nextInt(4)) {
                case 0 ->
                    out.writeBytes(FrameScannerTest.frame(
                            true, 0, 0x1, ("fz-" + seed + "-" + i).getBytes(StandardCharsets.UTF_8), random.nextInt()));
                case 1 -> {
                    final byte[] payload = new byte[random.nextInt(300)];
                    random.nextBytes(payload);
                    out.writeBytes(FrameScannerTest.frame(true, 0, 0x2, payload, random.nextInt()));
                }
                case 2 -> {
                    out.writeBytes(FrameScannerTest.frame(false, 0, 0x1, "part-".getBytes(StandardCharsets.UTF_8), 1));
                    out.writeBytes(FrameScannerTest.frame(true, 0, 0x9, new byte[random.nextInt(126)], 2));
                    out.writeBytes(FrameScannerTest.frame(true, 0, 0x0, "end".getBytes(StandardCharsets.UTF_8), 3));
                }
                default -> out.writeBytes(FrameScannerTest.frame(true, 0, 0xA, new byte[4], random.nextInt()));
            }
        }
        out.writeBytes(FrameScannerTest.frame(true, 0, 0x8, new byte[] {0x03, (byte) 0xE8}, random.nextInt()));
        return out.toByteArray();
    }

    /** One to three bytes of {@code wire} XORed with random non-zero values: headers, keys and payloads alike. */
    private static byte[] damaged(byte[] wire, Random random) {
        final byte[] copy = wire.clone();
        final int hits = 1 + random.nextInt(3);
        for (int i = 0; i < hits; i++) {
            copy[random.nextInt(copy.length)] ^= (byte) (1 + random.nextInt(255));
        }
        return copy;
    }
}
