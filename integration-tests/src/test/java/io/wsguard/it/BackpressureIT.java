package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Back-pressure, a slow side slows the other (bounded buffers): with an upstream that stops reading, a
 * client pushing 100 MiB is held back by TCP, and the proxy process does not buffer what it cannot
 * deliver (its RSS stays within a bound far below what the client tried to send).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BackpressureIT {

    private static final int CHUNK = 64 * 1024;
    private static final long TOTAL = 100L * 1024 * 1024;
    private static final long RSS_BOUND = 64L * 1024 * 1024;

    @TempDir
    Path dir;

    @Test
    void stalledUpstreamHoldsTheClientBackWithoutBufferingInTheProxy() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client =
                        TestClient.builder().nextTimeout(Duration.ofSeconds(20)).build()) {
            upstream.stall();
            upstream.dontRecord();
            final String routes = """
                    - name: slow
                      match: { path: /slow }
                      upstream: { targets: [%s] }
                      auth: none
                      messages: { maxSize: 1MiB }
                    """.formatted(upstream.uri("/slow"));
            try (WsguardProcess proxy = WsguardProcess.start(
                    PolicyText.in(dir).extra("proxy: { drainTimeout: 2s }\n").routes(routes))) {
                final TestClient.Recorder ws = client.connect(proxy.uri("/slow"));
                ws.session.sendBinary(ByteBuffer.wrap(new byte[CHUNK]), Callback.NOOP);
                assertThat(ws.next())
                        .as("first message echoed before the upstream stalls")
                        .isNotNull();
                final long rssBefore = proxy.rssBytes();
                long peakRss = rssBefore;

                // At most 16 sends (1 MiB) outstanding in the client; stop when none completes for 2 s.
                final Semaphore window = new Semaphore(16);
                final AtomicLong completed = new AtomicLong();
                final AtomicLong failed = new AtomicLong();
                final byte[] chunk = new byte[CHUNK];
                long offered = 0;
                final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(25);
                while (offered < TOTAL && System.nanoTime() - deadline < 0) {
                    if (!window.tryAcquire(2, TimeUnit.SECONDS)) {
                        break;
                    }
                    offered += CHUNK;
                    ws.session.sendBinary(
                            ByteBuffer.wrap(chunk),
                            Callback.from(
                                    () -> {
                                        completed.addAndGet(CHUNK);
                                        window.release();
                                    },
                                    x -> failed.incrementAndGet()));
                    if ((offered / CHUNK) % 64 == 0) {
                        peakRss = Math.max(peakRss, proxy.rssBytes());
                    }
                }
                peakRss = Math.max(peakRss, proxy.rssBytes());
                final long written = completed.get();
                System.out.printf(
                        "backpressure: client wrote %d MiB of %d MiB offered; proxy RSS %d -> peak %d MiB%n",
                        written >> 20, offered >> 20, rssBefore >> 20, peakRss >> 20);
                assertThat(failed.get()).as("failed sends").isZero();
                assertThat(written)
                        .as("bytes the client got onto the wire before it was held back")
                        .isLessThan(TOTAL / 2);
                assertThat(peakRss - rssBefore)
                        .as(
                                "proxy RSS growth (before %d MiB, peak %d MiB, client wrote %d MiB of %d)",
                                rssBefore >> 20, peakRss >> 20, written >> 20, TOTAL >> 20)
                        .isLessThan(RSS_BOUND);
                assertThat(proxy.process().isAlive()).isTrue();
            }
        }
    }
}
