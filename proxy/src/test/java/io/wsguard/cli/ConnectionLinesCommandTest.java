package io.wsguard.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.AuditLines;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The {@code audit} command on a log a running proxy wrote with {@code audit.connections: true} and
 * an integrity key: refusal and connection lines share one chain that {@code --verify} accepts,
 * {@code --event connection} shows only the connection lines, in a readable form, and
 * {@code --summary} counts them apart from the blocks.
 */
@Timeout(60)
class ConnectionLinesCommandTest {

    private static final String KEY = "a connection-log test key";

    @TempDir
    Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        final CommandLine cmd = new CommandLine(
                new AuditCommand(Map.of(AuditCommand.KEY_ENV, KEY)::get, Clock.systemUTC(), Duration.ofMillis(20)));
        cmd.setOut(new PrintWriter(out, true));
        cmd.setErr(new PrintWriter(err, true));
        return cmd.execute(args);
    }

    @Test
    void refusalAndConnectionLinesShareTheChainAndEventConnectionShowsOnlyConnections() throws Exception {
        final Path audit = dir.resolve("audit.jsonl");
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient();
                RunningProxy proxy = RunningProxy.start(PolicyText.in(dir)
                        .routes("""
                        - name: chat
                          match: { path: /chat }
                          upstream: { targets: [%s] }
                          auth: none
                        """.formatted(upstream.uri("/chat")))
                        .auditOptions("connections: true, integrityKey: '" + KEY + "'"))) {
            try (RawUpgrade refused = RawUpgrade.send(proxy.port(), "/nowhere", Map.of())) {
                assertThat(refused.status()).isEqualTo(404);
            }
            // Written now, so that the second refusal is a line of its own rather than coalesced with it.
            proxy.auditLines();
            for (int i = 0; i < 2; i++) {
                final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
                ws.send("hello");
                assertThat(ws.next()).isEqualTo("hello");
                ws.session.close(1000, "done " + i, Callback.NOOP);
                assertThat(ws.awaitClose()).isTrue();
            }
            try (RawUpgrade refused = RawUpgrade.send(proxy.port(), "/elsewhere", Map.of())) {
                assertThat(refused.status()).isEqualTo(404);
            }
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> proxy.auditLines().stream()
                                    .filter(l -> "connection".equals(l.get("event")))
                                    .count()
                            == 2);
        }
        final List<Map<String, Object>> lines = AuditLines.read(audit);
        assertThat(lines)
                .extracting(l -> l.get("event"))
                .containsOnly("blocked", "connection")
                .contains("blocked");
        assertThat(lines).allSatisfy(l -> assertThat(l).containsKeys("seq", "mac"));

        assertThat(run("--verify", audit.toString())).isZero();
        assertThat(out.toString()).startsWith("OK (" + lines.size() + " lines");

        assertThat(run("--event", "connection", audit.toString())).isZero();
        final List<String> shown = out.toString().lines().toList();
        assertThat(shown).hasSize(2).allSatisfy(line -> assertThat(line)
                .contains(" connection route=chat client=127.0.0.1 conn=")
                .contains(" target=" + "ws://127.0.0.1:")
                .contains(" in=1/5B out=1/5B closed by client: client_closed 1000 \"done "));

        assertThat(run("--event", "connection", "--json", audit.toString())).isZero();
        assertThat(out.toString().lines().map(AuditLines::parse)).hasSize(2).allSatisfy(l -> assertThat(l)
                .containsEntry("event", "connection")
                .containsEntry("messagesIn", 1)
                .containsEntry("bytesOut", 5));

        assertThat(run("--event", "blocked", audit.toString())).isZero();
        assertThat(out.toString().lines()).hasSize(2).allSatisfy(line -> assertThat(line)
                .contains(" blocked handshake no_route"));

        assertThat(run("--summary", audit.toString())).isZero();
        assertThat(out.toString())
                .contains("2 connections closed")
                .contains("connections by end:")
                .containsPattern("client: client_closed\\s+2");

        assertThat(run("--event", "connections", audit.toString())).isEqualTo(2);
        assertThat(err.toString())
                .contains("--event: 'connections' is not an event (expected: one of blocked, modified, monitored,"
                        + " config, store, connection, audit)");
    }
}
