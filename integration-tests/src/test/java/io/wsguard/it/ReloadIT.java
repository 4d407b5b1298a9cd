package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Reload through the jar (README, Admin port): SIGHUP and POST /admin/reload; open ones survive; bad files refused. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ReloadIT {

    @TempDir
    Path dir;

    @Test
    void sighupAndAdminReloadApplyNewPolicyWithoutDroppingOpenConnections() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client =
                        TestClient.builder().nextTimeout(Duration.ofSeconds(20)).build()) {
            final String routes = """
                    - name: echo
                      match: { path: /echo }
                      upstream: { targets: [%s] }
                      auth: none
                      messages: { maxSize: 1KiB }
                    """.formatted(upstream.uri("/echo"));
            final WsguardProcess proxy = WsguardProcess.start(PolicyText.in(dir)
                    .extra("admin: { host: 127.0.0.1, port: 0 }\n")
                    .routes(routes));
            try (proxy) {
                final TestClient.Recorder open = client.connect(proxy.uri("/echo"));
                final Path policy = dir.resolve("policy.yaml");
                final String big = "b".repeat(2000);

                // An invalid edit is refused by the admin endpoint (422), audited, and changes nothing.
                Files.writeString(policy, Files.readString(policy).replace("maxSize: 1KiB", "maxSize: huge"));
                final HttpResponse<String> refused = post(proxy.admin().resolve("/admin/reload"));
                assertThat(refused.statusCode()).isEqualTo(422);
                assertThat(refused.body()).contains("policy.yaml:").contains("maxSize");
                await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(proxy.auditLines())
                        .anySatisfy(line -> assertThat(line).containsEntry("reason", "config_rejected")));

                // A valid edit, applied by SIGHUP.
                Files.writeString(policy, Files.readString(policy).replace("maxSize: huge", "maxSize: 4KiB"));
                new ProcessBuilder("kill", "-HUP", Long.toString(proxy.process().pid()))
                        .start()
                        .waitFor();
                await().atMost(Duration.ofSeconds(10))
                        .pollInterval(Duration.ofMillis(200))
                        .untilAsserted(() -> {
                            final TestClient.Recorder fresh = client.connect(proxy.uri("/echo"));
                            fresh.send(big);
                            assertThat(fresh.messages.poll(1, TimeUnit.SECONDS)).isEqualTo(big);
                            fresh.session.close();
                        });

                // The connection opened before both reloads is still relaying.
                open.send("still here");
                assertThat(open.next()).isEqualTo("still here");
                assertThat(proxy.process().isAlive()).isTrue();
            }
        }
    }

    private static HttpResponse<String> post(URI uri) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(uri)
                                .POST(HttpRequest.BodyPublishers.noBody())
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
    }
}
