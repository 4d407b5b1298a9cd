package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Several upstream targets: a dead one is skipped, round-robin spreads, least-connections picks the idle one. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FailoverIT {

    @TempDir
    Path dir;

    UpstreamServer a;
    UpstreamServer b;
    TestClient client;
    WsguardProcess proxy;

    @BeforeEach
    void start() throws Exception {
        a = new UpstreamServer();
        b = new UpstreamServer();
        client = TestClient.builder().nextTimeout(Duration.ofSeconds(20)).build();
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        client.close();
        a.close();
        b.close();
    }

    private void run(String targets, String balance) throws Exception {
        final String routes = """
                - name: pool
                  match: { path: /pool }
                  upstream:
                    targets: [%s]
                    balance: %s
                    connectTimeout: 2s
                  auth: none
                """.formatted(targets, balance);
        proxy = WsguardProcess.start(PolicyText.in(dir).routes(routes));
    }

    private static int closedPort() throws Exception {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    @Test
    void deadFirstTargetIsSkipped() throws Exception {
        run("ws://127.0.0.1:" + closedPort() + "/pool, " + a.uri("/pool"), "round-robin");
        for (int i = 0; i < 4; i++) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/pool"));
            ws.send("hello-" + i);
            assertThat(ws.next()).isEqualTo("hello-" + i);
            ws.session.close();
        }
        assertThat(a.upgrades()).isEqualTo(4);
    }

    @Test
    void roundRobinSpreadsOverTwoLiveTargets() throws Exception {
        run(a.uri("/pool") + ", " + b.uri("/pool"), "round-robin");
        for (int i = 0; i < 6; i++) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/pool"));
            ws.send("m" + i);
            assertThat(ws.next()).isEqualTo("m" + i);
            ws.session.close();
        }
        assertThat(a.upgrades()).isEqualTo(3);
        assertThat(b.upgrades()).isEqualTo(3);
    }

    @Test
    void leastConnectionsPicksTheIdleTarget() throws Exception {
        run(a.uri("/pool") + ", " + b.uri("/pool"), "least-connections");
        final List<TestClient.Recorder> onA = new ArrayList<>();
        final List<TestClient.Recorder> onB = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/pool"));
            ws.send("id-" + i);
            assertThat(ws.next()).isEqualTo("id-" + i);
            (a.messages().remove("id-" + i) ? onA : onB).add(ws);
        }
        assertThat(onA).hasSize(2);
        assertThat(onB).hasSize(2);
        // Empty A: least-connections must now send the next two there (round-robin would split them).
        onA.forEach(ws -> ws.session.close());
        await().atMost(Duration.ofSeconds(10)).until(() -> a.open() == 0);
        for (int i = 4; i < 6; i++) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/pool"));
            ws.send("id-" + i);
            assertThat(ws.next()).isEqualTo("id-" + i);
            assertThat(a.messages())
                    .as("connection %d went to the idle target", i)
                    .contains("id-" + i);
        }
        assertThat(b.open()).isEqualTo(2);
        assertThat(a.open()).isEqualTo(2);
    }
}
