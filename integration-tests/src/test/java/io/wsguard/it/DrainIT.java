package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * README, Admin port: SIGTERM delivers in-flight messages, then closes every connection with 1001, and exits 0 within
 * drainTimeout.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DrainIT {

    @TempDir
    Path dir;

    @Test
    void sigtermDeliversInFlightThenCloses1001AndExits0() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client =
                        TestClient.builder().nextTimeout(Duration.ofSeconds(20)).build()) {
            final String routes = """
                    - name: echo
                      match: { path: /echo }
                      upstream: { targets: [%s] }
                      auth: none
                    """.formatted(upstream.uri("/echo"));
            final WsguardProcess proxy = WsguardProcess.start(
                    PolicyText.in(dir).extra("proxy: { drainTimeout: 5s }\n").routes(routes));
            try (proxy) {
                final List<TestClient.Recorder> clients = new ArrayList<>();
                for (int i = 0; i < 5; i++) {
                    final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
                    ws.send("warm-" + i);
                    assertThat(ws.next()).isEqualTo("warm-" + i);
                    clients.add(ws);
                }
                // The last messages are on the wire (written by the client) when SIGTERM arrives.
                final List<CompletableFuture<Void>> sent = new ArrayList<>();
                for (int i = 0; i < 5; i++) {
                    final CompletableFuture<Void> done = new CompletableFuture<>();
                    clients.get(i)
                            .session
                            .sendText(
                                    "last-" + i, Callback.from(() -> done.complete(null), done::completeExceptionally));
                    sent.add(done);
                }
                CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new)).get(10, TimeUnit.SECONDS);
                final long start = System.nanoTime();
                proxy.terminate();
                for (int i = 0; i < 5; i++) {
                    final TestClient.Recorder ws = clients.get(i);
                    assertThat(ws.awaitClose()).as("client %d closed", i).isTrue();
                    assertThat(ws.closeCode).as("client %d close code", i).isEqualTo(1001);
                    assertThat(ws.messages.poll())
                            .as("client %d got its last echo before the 1001", i)
                            .isEqualTo("last-" + i);
                }
                assertThat(proxy.awaitExit(Duration.ofSeconds(10)))
                        .as("still running after SIGTERM")
                        .isNotEqualTo(-1);
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5 + 3));
            }
        }
    }

    @Test
    void sigtermExitsZeroWithinDrainTimeout() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client =
                        TestClient.builder().nextTimeout(Duration.ofSeconds(20)).build()) {
            final String routes = """
                    - name: echo
                      match: { path: /echo }
                      upstream: { targets: [%s] }
                      auth: none
                    """.formatted(upstream.uri("/echo"));
            final WsguardProcess proxy = WsguardProcess.start(
                    PolicyText.in(dir).extra("proxy: { drainTimeout: 5s }\n").routes(routes));
            try (proxy) {
                final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
                ws.send("hi");
                assertThat(ws.next()).isEqualTo("hi");
                final long start = System.nanoTime();
                proxy.terminate();
                final int exit = proxy.awaitExit(Duration.ofSeconds(10));
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5 + 3));
                // README, CLI: exit 0 on success; SIGTERM is the ordinary way to stop (README, Admin port).
                assertThat(exit)
                        .as("exit code after SIGTERM; stderr:\n%s", proxy.stderr())
                        .isEqualTo(0);
            }
        }
    }
}
