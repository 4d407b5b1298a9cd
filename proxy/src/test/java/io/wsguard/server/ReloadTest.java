package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.admin.ReloadResult;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Policy reload (README, Admin port): new connections get the new policy, open ones keep theirs, bad files refused. */
@Timeout(60)
class ReloadTest {

    @TempDir
    Path dir;

    UpstreamServer upstream;
    RunningProxy proxy;
    TestClient client;

    private String routes(String maxSize) {
        return """
                - name: chat
                  match: { path: /chat }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { maxSize: %s }
                """.formatted(upstream.uri("/chat"), maxSize);
    }

    @BeforeEach
    void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes(routes("1KiB")));
        client = new TestClient();
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    private void rewritePolicy(String from, String to) throws Exception {
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, Files.readString(file).replace(from, to));
    }

    @Test
    void validPolicyAppliesToNewConnectionsAndOpenOnesKeepTheirs() throws Exception {
        final TestClient.Recorder before = client.connect(proxy.uri("/chat"));
        rewritePolicy("maxSize: 1KiB", "maxSize: 4KiB");
        final ReloadResult result = proxy.server().reload();
        assertThat(result.applied()).as("%s", result.problems()).isTrue();

        // The open connection still works through the old policy's upstream client...
        before.send("still here");
        assertThat(before.next()).isEqualTo("still here");
        // ...and keeps the limit it started with.
        before.send("x".repeat(2048));
        assertThat(before.awaitClose()).isTrue();
        assertThat(before.closeCode).isEqualTo(1009);

        final TestClient.Recorder after = client.connect(proxy.uri("/chat"));
        final String big = "y".repeat(2048);
        after.send(big);
        assertThat(after.next()).isEqualTo(big);
        after.session.close();
    }

    @Test
    void invalidPolicyIsRefusedAuditedAndTheOldOneStays() throws Exception {
        rewritePolicy("maxSize: 1KiB", "maxSize: lots");
        final ReloadResult result = proxy.server().reload();
        assertThat(result.applied()).isFalse();
        assertThat(result.problems())
                .singleElement()
                .asString()
                .matches(".*policy\\.yaml:\\d+:\\d+: routes\\[0\\]\\.messages\\.maxSize: .*");
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "config")
                .containsEntry("stage", "config")
                .containsEntry("reason", "config_rejected"));

        final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
        ws.send("x".repeat(2048));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1009);
    }

    @Test
    void listenerChangesNeedARestart() throws Exception {
        rewritePolicy("port: 0", "port: 1");
        final ReloadResult result = proxy.server().reload();
        assertThat(result.applied()).isFalse();
        assertThat(result.problems()).singleElement().asString().contains("listeners changed; restart wsguard");
    }

    @Test
    void aChangedFileIsReloadedByItself() throws Exception {
        rewritePolicy("maxSize: 1KiB", "maxSize: 4KiB");
        final String big = "z".repeat(2048);
        await().atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(300))
                .untilAsserted(() -> {
                    final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
                    ws.send(big);
                    assertThat(ws.messages.poll(1, TimeUnit.SECONDS)).isEqualTo(big);
                    ws.session.close();
                });
    }
}
