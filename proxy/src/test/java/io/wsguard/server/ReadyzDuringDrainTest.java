package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * SPEC §6 on a real proxy's admin port: {@code /readyz} answers 200 until a drain starts and 503
 * while it runs, so a load balancer stops sending new clients; {@code /healthz} stays 200, the
 * process is still up and finishing its connections.
 */
@Timeout(60)
class ReadyzDuringDrainTest {

    @TempDir
    Path dir;

    @Test
    void readyzTurns503WhileTheProxyDrainsAndHealthzStays200() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer(); TestClient client = new TestClient()) {
            final RunningProxy proxy = RunningProxy.start(dir, """
                    - name: chat
                      match: { path: /chat }
                      upstream: { targets: [%s] }
                      auth: none
                    """.formatted(upstream.uri("/chat")),
                    "admin: { host: 127.0.0.1, port: 0 }\nproxy: { drainTimeout: 10s }\n");
            try (proxy) {
                final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
                final String admin = proxy.server().adminUrl();
                assertThat(get(http, admin + "/readyz")).isEqualTo("200 ready");
                assertThat(get(http, admin + "/healthz")).isEqualTo("200 ok");

                // As in DrainTest: an upstream that stops reading never answers the drain's CLOSE,
                // which keeps the drain going while the admin port is asked.
                final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
                upstream.stall();
                open.send("last");
                assertThat(open.next()).isEqualTo("last");
                final CompletableFuture<Void> draining = CompletableFuture.runAsync(proxy.server()::drainAndStop);
                await().atMost(Duration.ofSeconds(5)).until(proxy.server()::isDraining);

                assertThat(get(http, admin + "/readyz")).isEqualTo("503 draining");
                assertThat(get(http, admin + "/healthz")).isEqualTo("200 ok");
                assertThat(draining).as("still draining while the admin port answered").isNotDone();

                assertThat(open.awaitClose()).isTrue();
                assertThat(open.closeCode).isEqualTo(1001);
                draining.get(20, TimeUnit.SECONDS);
            }
        }
    }

    /** "STATUS BODY" of a GET over loopback. */
    private static String get(HttpClient http, String url) throws Exception {
        final HttpResponse<String> response = http.send(
                HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        return response.statusCode() + " " + response.body();
    }
}
