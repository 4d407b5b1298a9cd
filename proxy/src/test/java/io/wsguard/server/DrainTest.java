package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.wsguard.Version;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.exceptions.UpgradeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * SPEC §4/§6, on a real proxy: while draining, new upgrades get 503 (audited) and never reach the
 * upstream, {@code /readyz} answers 503 while {@code /healthz} stays 200, and open connections get
 * 1001 within {@code drainTimeout}, also when their upstream never answers the drain's CLOSE.
 */
@Timeout(60)
class DrainTest {

    @TempDir
    Path dir;

    @Test
    void upgradesDuringDrainGet503AndTheUpstreamSeesNothing() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient();
                RunningProxy proxy = chatProxy(upstream, "proxy: { drainTimeout: 10s }\n")) {
            final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
            final CompletableFuture<Void> draining = drainWithAStalledUpstream(proxy, upstream, open);

            final int upgrades = upstream.upgrades();
            final ExecutionException refused =
                    assertThrows(ExecutionException.class, () -> client.connectAsync(proxy.uri("/chat"), Map.of())
                            .get(10, TimeUnit.SECONDS));
            assertThat(((UpgradeException) refused.getCause()).getResponseStatusCode())
                    .isEqualTo(503);
            assertThat(upstream.upgrades()).isEqualTo(upgrades);
            assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                    .containsEntry("reason", "unavailable")
                    .containsEntry("status", 503)
                    .containsEntry("detail", "draining"));

            assertThat(open.awaitClose()).isTrue();
            assertThat(open.closeCode).isEqualTo(1001);
            draining.get(20, TimeUnit.SECONDS);
        }
    }

    @Test
    void readyzTurns503WhileTheProxyDrainsAndHealthzStays200() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient();
                RunningProxy proxy =
                        chatProxy(upstream, "admin: { host: 127.0.0.1, port: 0 }\nproxy: { drainTimeout: 10s }\n")) {
            final HttpClient http = HttpClient.newBuilder()
                    .connectTimeout(Duration.ofSeconds(5))
                    .build();
            final String admin = proxy.server().adminUrl();
            assertThat(get(http, admin + "/readyz")).isEqualTo("200 ready");
            assertThat(get(http, admin + "/healthz")).isEqualTo("200 ok " + Version.describe());

            final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
            final CompletableFuture<Void> draining = drainWithAStalledUpstream(proxy, upstream, open);
            assertThat(get(http, admin + "/readyz")).isEqualTo("503 draining");
            assertThat(get(http, admin + "/healthz")).isEqualTo("200 ok " + Version.describe());
            assertThat(draining)
                    .as("still draining while the admin port answered")
                    .isNotDone();

            assertThat(open.awaitClose()).isTrue();
            assertThat(open.closeCode).isEqualTo(1001);
            draining.get(20, TimeUnit.SECONDS);
        }
    }

    @Test
    void aShortDrainStillSends1001WhenTheUpstreamNeverAnswers() throws Exception {
        // A session waits up to 5 s for its upstream's answer to the drain's CLOSE; a 2 s drain must
        // still give the client a CLOSE it can read (before, the socket was dropped at the deadline: 1006).
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient();
                RunningProxy proxy = chatProxy(upstream, "proxy: { drainTimeout: 2s }\n")) {
            final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
            final CompletableFuture<Void> draining = drainWithAStalledUpstream(proxy, upstream, open);
            assertThat(open.closed.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(open.closeCode).isEqualTo(1001);
            draining.get(20, TimeUnit.SECONDS);
        }
    }

    private RunningProxy chatProxy(UpstreamServer upstream, String extraYaml) throws Exception {
        return RunningProxy.start(
                PolicyText.in(dir).routes("""
                - name: chat
                  match: { path: /chat }
                  upstream: { targets: [%s] }
                  auth: none
                """.formatted(upstream.uri("/chat"))).extra(extraYaml));
    }

    /**
     * Makes the upstream stop reading after one last echoed message, so that it never answers the
     * drain's CLOSE and the drain runs on, then starts the drain and waits until it has begun.
     */
    private static CompletableFuture<Void> drainWithAStalledUpstream(
            RunningProxy proxy, UpstreamServer upstream, TestClient.Recorder open) throws Exception {
        upstream.stall();
        open.send("last");
        assertThat(open.next()).isEqualTo("last");
        final CompletableFuture<Void> draining = CompletableFuture.runAsync(proxy.server()::drainAndStop);
        await().atMost(Duration.ofSeconds(5)).until(proxy.server()::isDraining);
        return draining;
    }

    /** "STATUS BODY" of a GET over loopback. */
    private static String get(HttpClient http, String url) throws Exception {
        final HttpResponse<String> response = http.send(
                HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(5))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return response.statusCode() + " " + response.body();
    }
}
