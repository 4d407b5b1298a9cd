package io.wsguard.audit;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Reason;
import io.wsguard.policy.Rate;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Connection lines in the audit log itself: one line each, never coalesced and outside the client's
 * line budget, in the same chain as the rest; a bounded queue whose losses are counted and reported
 * in the log; targets written without secrets.
 */
@Timeout(30)
class ConnectionLinesTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final byte[] KEY = "connection lines key".getBytes(StandardCharsets.UTF_8);

    /** Keeps every line; {@link #hold()} makes the next write wait until {@link #release()}. */
    private static final class HeldSink implements LineSink {
        final List<String> lines = new CopyOnWriteArrayList<>();
        private volatile CountDownLatch gate;
        final CountDownLatch entered = new CountDownLatch(1);

        void hold() {
            gate = new CountDownLatch(1);
        }

        void release() {
            gate.countDown();
        }

        @Override
        public void write(String line) {
            final CountDownLatch g = gate;
            if (g != null) {
                entered.countDown();
                try {
                    g.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            lines.add(line);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    }

    private static ConnectionEvent connection(String conn, URI target) {
        final Instant closed = Instant.parse("2026-12-04T20:15:14.620Z");
        return new ConnectionEvent(
                closed,
                "chat",
                "203.0.113.7",
                conn,
                "alice",
                "https://chat.example.com",
                closed.minusMillis(1500),
                1500,
                3,
                120,
                5,
                300,
                "client",
                "client_closed",
                1000,
                "bye",
                "",
                target);
    }

    private static AuditLog log(HeldSink sink, Rate linesPerClient, int maxQueued) {
        return new AuditLog(
                sink,
                Clock.systemUTC(),
                Duration.ofSeconds(1),
                AuditLog.DEFAULT_MAX_OPEN_KEYS,
                0,
                KEY,
                linesPerClient,
                AuditLog.MAX_BUDGET_CLIENTS,
                maxQueued);
    }

    @Test
    void everyConnectionIsALineOfItsOwnOutsideTheClientsBudgetAndInTheChain() {
        final HeldSink sink = new HeldSink();
        try (AuditLog log = log(sink, new Rate(2, Duration.ofMinutes(1)), AuditLog.MAX_QUEUED_CONNECTIONS)) {
            for (int i = 0; i < 3; i++) {
                log.record(AuditEvent.builder(AuditEvent.Kind.BLOCKED, Reason.ORIGIN_DENIED)
                        .client("203.0.113.7")
                        .route("chat")
                        .detail("origin not allowed")
                        .build());
                log.flush();
            }
            for (int i = 0; i < 50; i++) {
                log.recordConnection(connection("c" + i, URI.create("ws://10.0.0.5:9000/chat")));
            }
            log.flush();
            assertThat(log.eventsOverBudget())
                    .as("only the third refusal is over the budget")
                    .isEqualTo(1);
        }
        final List<JsonNode> connections = sink.lines.stream()
                .map(JSON::readTree)
                .filter(n -> n.get("event").asString().equals("connection"))
                .toList();
        assertThat(connections).hasSize(50);
        assertThat(connections).extracting(n -> n.get("conn").asString()).doesNotHaveDuplicates();
        assertThat(MacChain.verify(sink.lines, KEY).ok()).isTrue();
    }

    @Test
    void aLineHasEveryFieldInOrderAndItsTargetWithoutSecrets() {
        final HeldSink sink = new HeldSink();
        try (AuditLog log = log(sink, new Rate(60, Duration.ofMinutes(1)), 10)) {
            log.recordConnection(connection("1c3", URI.create("wss://svc:hunter2@10.0.0.5:9443/chat?api_key=k3y&v=2")));
            log.flush();
        }
        final String line = sink.lines.get(0);
        assertThat(line)
                .startsWith("{\"ts\":\"2026-12-04T20:15:14.620Z\",\"event\":\"connection\",\"stage\":\"session\","
                        + "\"reason\":\"client_closed\",\"route\":\"chat\",\"client\":\"203.0.113.7\",\"conn\":\"1c3\","
                        + "\"sub\":\"alice\",\"origin\":\"https://chat.example.com\",\"action\":null,\"closeCode\":1000,"
                        + "\"status\":null,\"count\":1,\"detail\":\"\",\"closedBy\":\"client\",\"closeReason\":\"bye\","
                        + "\"opened\":\"2026-12-04T20:15:13.120Z\",\"durationMs\":1500,"
                        + "\"messagesIn\":3,\"bytesIn\":120,"
                        + "\"messagesOut\":5,\"bytesOut\":300,"
                        + "\"target\":\"wss://svc:<redacted>@10.0.0.5:9443/chat?api_key=<redacted>&v=<redacted>\",")
                .doesNotContain("hunter2")
                .doesNotContain("k3y");
        final AuditReader.Entry entry = AuditReader.parse(line);
        assertThat(entry.connection())
                .isEqualTo(new AuditReader.Connection(
                        "client",
                        "bye",
                        Instant.parse("2026-12-04T20:15:13.120Z"),
                        1500,
                        3,
                        120,
                        5,
                        300,
                        "wss://svc:<redacted>@10.0.0.5:9443/chat?api_key=<redacted>&v=<redacted>"));
        assertThat(AuditReader.human(entry))
                .isEqualTo("2026-12-04T20:15:14.620Z connection route=chat client=203.0.113.7 conn=1c3 sub=alice"
                        + " origin=https://chat.example.com"
                        + " target=wss://svc:<redacted>@10.0.0.5:9443/chat?api_key=<redacted>&v=<redacted>"
                        + " 1.5s in=3/120B out=5/300B closed by client: client_closed 1000 \"bye\"");
    }

    @Test
    void aFullQueueDropsLinesCountsThemAndReportsThemInTheLog() throws Exception {
        final HeldSink sink = new HeldSink();
        try (AuditLog log = log(sink, new Rate(60, Duration.ofMinutes(1)), 3)) {
            sink.hold();
            // The writer takes the first line and is held writing it: the next ones wait in the queue.
            log.recordConnection(connection("first", null));
            assertThat(sink.entered.await(10, TimeUnit.SECONDS)).isTrue();
            for (int i = 0; i < 8; i++) {
                log.recordConnection(connection("q" + i, null));
            }
            assertThat(log.connectionsDropped()).isEqualTo(5);
            sink.release();
            log.flush();
        }
        final List<JsonNode> lines = sink.lines.stream().map(JSON::readTree).toList();
        assertThat(lines)
                .extracting(n -> n.get("conn").isNull() ? "-" : n.get("conn").asString())
                .containsExactly("first", "q0", "q1", "q2", "-");
        final JsonNode report = lines.get(4);
        assertThat(report.get("event").asString()).isEqualTo("connection");
        assertThat(report.get("reason").asString()).isEqualTo("connections_dropped");
        assertThat(report.get("count").asLong()).isEqualTo(5);
        assertThat(report.get("client").isNull()).isTrue();
        assertThat(report.get("detail").asString())
                .isEqualTo("5 connection line(s) dropped: more than 3 were waiting for the audit writer");
        assertThat(MacChain.verify(sink.lines, KEY).ok()).isTrue();
        assertThat(AuditReader.parse(sink.lines.get(4)).connection()).isNull();
    }
}
