package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
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

/** SPEC §4/§6: while draining, new upgrades get 503 (audited) and never reach the upstream. */
@Timeout(60)
class DrainTest {

    @TempDir
    Path dir;

    @Test
    void upgradesDuringDrainGet503AndTheUpstreamSeesNothing() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer(); TestClient client = new TestClient()) {
            final RunningProxy proxy = RunningProxy.start(dir, """
                    - name: chat
                      match: { path: /chat }
                      upstream: { targets: [%s] }
                      auth: none
                    """.formatted(upstream.uri("/chat")), "proxy: { drainTimeout: 10s }\n");
            try (proxy) {
                // An upstream that stops reading never answers the drain's CLOSE, which keeps the
                // drain going long enough to knock on the door.
                final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
                upstream.stall();
                open.send("last");
                assertThat(open.next()).isEqualTo("last");
                final CompletableFuture<Void> draining = CompletableFuture.runAsync(proxy.server()::drainAndStop);
                await().atMost(Duration.ofSeconds(5)).until(proxy.server()::isDraining);

                final int upgrades = upstream.upgrades();
                final ExecutionException refused = assertThrows(ExecutionException.class,
                        () -> client.connectAsync(proxy.uri("/chat"), Map.of()).get(10, TimeUnit.SECONDS));
                assertThat(((UpgradeException) refused.getCause()).getResponseStatusCode()).isEqualTo(503);
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
    }
}
