package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * SPEC §6: open connections get 1001 within {@code drainTimeout}, also when the drain budget is
 * shorter than the time a session waits for its upstream to answer the drain's CLOSE, and the
 * upstream never answers. Before, the client's socket was dropped at the deadline without a CLOSE.
 */
@Timeout(60)
class DrainDeadlineTest {

    @TempDir
    Path dir;

    @Test
    void aShortDrainStillSends1001WhenTheUpstreamNeverAnswers() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer(); TestClient client = new TestClient()) {
            final RunningProxy proxy = RunningProxy.start(dir, """
                    - name: chat
                      match: { path: /chat }
                      upstream: { targets: [%s] }
                      auth: none
                    """.formatted(upstream.uri("/chat")), "proxy: { drainTimeout: 2s }\n");
            try (proxy) {
                final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
                // An upstream that stops reading after this message never sees, let alone answers,
                // the drain's CLOSE.
                upstream.stall();
                open.send("last");
                assertThat(open.next()).isEqualTo("last");

                final CompletableFuture<Void> draining = CompletableFuture.runAsync(proxy.server()::drainAndStop);
                assertThat(open.closed.await(10, TimeUnit.SECONDS)).isTrue();
                assertThat(open.closeCode).isEqualTo(1001);
                draining.get(20, TimeUnit.SECONDS);
            }
        }
    }
}
