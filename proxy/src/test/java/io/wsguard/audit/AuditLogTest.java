package io.wsguard.audit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.wsguard.Version;
import io.wsguard.audit.AuditEvent.Kind;
import io.wsguard.check.Reason;
import io.wsguard.check.Stage;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.Rate;
import io.wsguard.policy.Secret;
import io.wsguard.testing.MutableClock;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

@Timeout(30)
class AuditLogTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Instant T0 = Instant.parse("2026-11-23T10:15:02.117Z");

    @TempDir
    Path dir;

    private AuditPolicy policy(long maxFileSize, int maxFiles, int sampleBytes, String key) {
        return new AuditPolicy(
                AuditPolicy.Sink.FILE,
                dir.resolve("logs/audit.jsonl"),
                maxFileSize,
                maxFiles,
                sampleBytes,
                Optional.ofNullable(key).map(Secret::new));
    }

    private AuditPolicy policy() {
        return policy(1 << 20, 3, 0, null);
    }

    private List<String> lines() throws IOException {
        return Files.readAllLines(dir.resolve("logs/audit.jsonl"), StandardCharsets.UTF_8);
    }

    private static AuditEvent schemaViolation(String conn) {
        return schemaViolation("203.0.113.7", conn);
    }

    private static AuditEvent schemaViolation(String client, String conn) {
        return AuditEvent.builder(Kind.BLOCKED, Reason.SCHEMA_VIOLATION)
                .ts(T0)
                .route("chat")
                .client(client)
                .conn(conn)
                .sub("alice")
                .origin("https://chat.example.com")
                .action("close")
                .closeCode(1008)
                .detail("$.text: expected string")
                .build();
    }

    /** A distinct client address per {@code i}, so that each event gets its own line. */
    private static String client(int i) {
        return "10." + (i >> 16 & 0xff) + "." + (i >> 8 & 0xff) + "." + (i & 0xff);
    }

    @Test
    void writesSpecLineWithFieldsInOrder() throws IOException {
        try (AuditLog log = AuditLog.from(policy(), Clock.systemUTC())) {
            log.record(schemaViolation("c1b7e"));
            log.flush();
            assertThat(lines())
                    .containsExactly("{\"ts\":\"2026-11-23T10:15:02.117Z\",\"event\":\"blocked\",\"stage\":\"message\","
                            + "\"reason\":\"schema_violation\",\"route\":\"chat\",\"client\":\"203.0.113.7\","
                            + "\"conn\":\"c1b7e\",\"sub\":\"alice\",\"origin\":\"https://chat.example.com\","
                            + "\"action\":\"close\",\"closeCode\":1008,\"status\":null,\"count\":1,"
                            + "\"detail\":\"$.text: expected string\"}");
        }
    }

    @Test
    void writesNullsAndEscapesDetail() throws IOException {
        try (AuditLog log = AuditLog.from(policy(), Clock.systemUTC())) {
            log.record(new AuditEvent(
                    null,
                    Kind.CONFIG,
                    Stage.CONFIG,
                    Reason.CONFIG_REJECTED,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    "bad \"x\"\n\u0001ü",
                    null));
            log.flush();
            final String line = lines().get(0);
            assertThat(line)
                    .contains("\"route\":null,\"client\":null,\"conn\":null,\"sub\":null,\"origin\":null,"
                            + "\"action\":null,\"closeCode\":null,\"status\":null,\"count\":1");
            // A config line names the build that wrote it after its detail.
            assertThat(line)
                    .endsWith("\"detail\":\"bad \\\"x\\\"\\n\\u0001ü\",\"version\":\"" + Version.number()
                            + "\",\"commit\":\"" + Version.commit() + "\"}");
            assertThat(JSON.readTree(line).get("ts").asString())
                    .matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z");
        }
    }

    // Until issue 14 the key held the connection, so one address opening a connection per denied
    // message wrote a line per message: the lines below were c1×3, c2×1 and c1×2.
    @Test
    void coalescesPerClientWhateverTheConnectionAndOpensANewWindowAfterOneEnds() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        try (AuditLog log = AuditLog.from(policy(), clock)) {
            for (int i = 0; i < 3; i++) {
                log.record(schemaViolation("c1"));
            }
            log.record(schemaViolation("c2"));
            log.record(schemaViolation("198.51.100.2", "c3"));
            clock.advance(Duration.ofSeconds(1));
            // The writer ends both windows on its own once the clock passes their end.
            await().atMost(Duration.ofSeconds(5)).until(() -> log.linesWritten() == 2);
            log.record(schemaViolation("c1"));
            log.record(schemaViolation("c1"));
            log.flush();
            final List<JsonNode> nodes = lines().stream().map(JSON::readTree).toList();
            // conn is null on a line whose events came from more than one connection.
            assertThat(nodes)
                    .extracting(n -> n.get("client").asString() + " "
                            + (n.get("conn").isNull() ? "null" : n.get("conn").asString())
                            + "×" + n.get("count").asLong())
                    .containsExactly("203.0.113.7 null×4", "198.51.100.2 c3×1", "203.0.113.7 c1×2");
        }
    }

    @Test
    void coalescesRefusedHandshakesPerClientAndRoute() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        try (AuditLog log = AuditLog.from(policy(), clock)) {
            for (int i = 0; i < 5; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.NO_ROUTE)
                        .client("198.51.100.1")
                        .action("refuse")
                        .status(404)
                        .detail("no route")
                        .build());
            }
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.NO_ROUTE)
                    .client("198.51.100.2")
                    .action("refuse")
                    .status(404)
                    .detail("no route")
                    .build());
            log.flush();
            assertThat(lines().stream().map(JSON::readTree))
                    .extracting(n ->
                            n.get("client").asString() + "×" + n.get("count").asLong())
                    .containsExactly("198.51.100.1×5", "198.51.100.2×1");
        }
    }

    @Test
    void countsEveryEventExactlyUnderContentionWithBoundedWindows() throws Exception {
        final int threads = 16;
        final int perThread = 50_000;
        try (AuditLog log = AuditLog.from(policy(1L << 30, 1, 0, null), Clock.systemUTC(), Duration.ofMillis(50))) {
            final CountDownLatch start = new CountDownLatch(1);
            final List<Thread> workers = new ArrayList<>();
            final AtomicInteger failures = new AtomicInteger();
            for (int t = 0; t < threads; t++) {
                final int id = t;
                final Thread worker = new Thread(() -> {
                    try {
                        start.await();
                        for (int i = 0; i < perThread; i++) {
                            // 30,000 clients: more than the 10,000 open windows allowed.
                            final int c = (i * 7 + id) % 30_000;
                            log.record(AuditEvent.builder(
                                            Kind.BLOCKED, i % 2 == 0 ? Reason.MESSAGE_RATE : Reason.PATTERN_DENIED)
                                    .route("r" + (i % 3))
                                    .conn("c" + c)
                                    .client(client(c))
                                    .detail("x")
                                    .build());
                        }
                    } catch (InterruptedException | RuntimeException e) {
                        failures.incrementAndGet();
                    }
                });
                workers.add(worker);
                worker.start();
            }
            final long began = System.nanoTime();
            start.countDown();
            for (Thread worker : workers) {
                worker.join();
            }
            final Duration took = Duration.ofNanos(System.nanoTime() - began);
            log.flush();
            assertThat(failures).hasValue(0);
            final List<JsonNode> nodes = lines().stream().map(JSON::readTree).toList();
            assertThat(nodes.stream().mapToLong(n -> n.get("count").asLong()).sum())
                    .isEqualTo((long) threads * perThread);
            assertThat(log.linesFailed()).isZero();
            // Recording never waited for the writer: 800,000 events well within the test's timeout.
            assertThat(took).isLessThan(Duration.ofSeconds(20));
            nodes.stream()
                    .filter(n -> n.get("detail").asString().equals(AuditLog.OVERFLOW_DETAIL))
                    .forEach(n -> assertThat(
                                    n.get("conn").isNull() && n.get("client").isNull())
                            .isTrue());
        }
    }

    @Test
    void overflowsPastTheOpenWindowCapWithExactCounts() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        final Path file = dir.resolve("cap.jsonl");
        try (AuditLog log =
                new AuditLog(new FileAuditSink(file, 1 << 20, 1), clock, Duration.ofSeconds(1), 3, 0, null)) {
            for (int i = 0; i < 10; i++) {
                log.record(schemaViolation(client(i), "c" + i));
            }
            log.record(schemaViolation(client(9), "c9"));
            log.flush();
            final List<JsonNode> nodes =
                    Files.readAllLines(file).stream().map(JSON::readTree).toList();
            assertThat(nodes).hasSize(4);
            assertThat(nodes.subList(0, 3))
                    .extracting(n -> n.get("count").asLong())
                    .containsOnly(1L);
            final JsonNode overflow = nodes.get(3);
            assertThat(overflow.get("count").asLong()).isEqualTo(8);
            assertThat(overflow.get("detail").asString()).isEqualTo(AuditLog.OVERFLOW_DETAIL);
            assertThat(overflow.get("conn").isNull()).isTrue();
            assertThat(overflow.get("client").isNull()).isTrue();
            assertThat(overflow.get("route").asString()).isEqualTo("chat");
        }
    }

    private static AuditEvent denied(String client, String conn, Reason reason, String route) {
        return AuditEvent.builder(Kind.BLOCKED, reason)
                .route(route)
                .client(client)
                .conn(conn)
                .action("close")
                .closeCode(1008)
                .detail("rule script-tag matched")
                .build();
    }

    private static long sumCounts(List<JsonNode> nodes) {
        return nodes.stream().mapToLong(n -> n.get("count").asLong()).sum();
    }

    @Test
    void aClientOverItsLineBudgetGetsOneSummedLineWithExactCoversAndOthersKeepTheirLines() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        final Path file = dir.resolve("budget.jsonl");
        try (AuditLog log = new AuditLog(
                new FileAuditSink(file, 1 << 20, 1),
                clock,
                Duration.ofSeconds(1),
                100,
                0,
                null,
                Rate.parse("3/min"),
                100)) {
            long flood = 0;
            long other = 0;
            for (int second = 0; second < 10; second++) {
                for (int i = 0; i < 50; i++) {
                    // 50 connections a second, each with one denied message; every fifth on another route.
                    log.record(denied(
                            "203.0.113.7",
                            "c" + second + "-" + i,
                            Reason.PATTERN_DENIED,
                            i % 5 == 0 ? "admin" : "chat"));
                    flood++;
                }
                log.record(denied("203.0.113.7", "r" + second, Reason.MESSAGE_RATE, "chat"));
                flood++;
                if (second % 4 == 0) {
                    log.record(denied("198.51.100.9", "b" + second, Reason.PATTERN_DENIED, "chat"));
                    other++;
                }
                clock.advance(Duration.ofSeconds(1));
                // Each second's windows end before the next second's events: a line per window, or none.
                await().atMost(Duration.ofSeconds(5)).until(() -> log.openWindows() == 0);
            }
            // The flood's period has not ended: its summed line is not written yet.
            log.flush();
            final List<JsonNode> nodes =
                    Files.readAllLines(file).stream().map(JSON::readTree).toList();
            final List<JsonNode> flooder = nodes.stream()
                    .filter(n -> n.get("client").asString().equals("203.0.113.7"))
                    .toList();
            final List<JsonNode> bystander = nodes.stream()
                    .filter(n -> n.get("client").asString().equals("198.51.100.9"))
                    .toList();
            assertThat(sumCounts(flooder)).isEqualTo(flood);
            assertThat(flooder).hasSize(4); // 3 lines, then one with the rest
            assertThat(flooder.subList(0, 3)).allMatch(n -> !n.has("covers"));
            final JsonNode summed = flooder.get(3);
            assertThat(summed.get("detail").asString())
                    .isEqualTo("over audit.linesPerClient (3/min): the rest of the client's events, summed");
            assertThat(summed.get("conn").isNull()
                            && summed.get("action").isNull()
                            && summed.get("closeCode").isNull())
                    .isTrue();
            final List<JsonNode> covers = new ArrayList<>();
            summed.get("covers").forEach(covers::add);
            assertThat(covers.stream().mapToLong(c -> c.get("count").asLong()).sum())
                    .isEqualTo(summed.get("count").asLong());
            // The three lines written were the first three windows: pattern_denied chat, admin and message_rate.
            assertThat(flooder.subList(0, 3))
                    .extracting(n -> n.get("reason").asString() + "/"
                            + n.get("route").asString() + "×" + n.get("count").asLong())
                    .containsExactlyInAnyOrder(
                            "pattern_denied/chat×40", "pattern_denied/admin×10", "message_rate/chat×1");
            assertThat(covers)
                    .extracting(c -> c.get("event").asString() + " "
                            + c.get("stage").asString() + " "
                            + c.get("reason").asString() + "/" + c.get("route").asString()
                            + "×" + c.get("count").asLong())
                    .containsExactlyInAnyOrder(
                            "blocked message pattern_denied/chat×360",
                            "blocked message pattern_denied/admin×90",
                            "blocked message message_rate/chat×9");
            assertThat(log.eventsOverBudget()).isEqualTo(459);
            // The bystander was not starved: its own lines, its own budget.
            assertThat(bystander).extracting(n -> n.get("count").asLong()).containsExactly(1L, 1L, 1L);
            assertThat(sumCounts(bystander)).isEqualTo(other);

            // The rest of the period is summed again; its end writes that line and gives a new budget.
            log.record(denied("203.0.113.7", "late", Reason.PATTERN_DENIED, "chat"));
            clock.advance(Duration.ofSeconds(1));
            await().atMost(Duration.ofSeconds(5)).until(() -> log.eventsOverBudget() == 460);
            final long before = log.linesWritten();
            clock.advance(Duration.ofMinutes(1));
            await().atMost(Duration.ofSeconds(5)).until(() -> log.linesWritten() == before + 1);
            log.record(denied("203.0.113.7", "next", Reason.PATTERN_DENIED, "chat"));
            log.flush();
            final List<JsonNode> all =
                    Files.readAllLines(file).stream().map(JSON::readTree).toList();
            final JsonNode periodEnd = all.get(all.size() - 2);
            assertThat(periodEnd.get("count").asLong()).isEqualTo(1);
            assertThat(periodEnd.get("conn").asString()).isEqualTo("late"); // one connection: kept
            assertThat(periodEnd.get("covers")).hasSize(1);
            final JsonNode fresh = all.get(all.size() - 1);
            assertThat(fresh.has("covers")).isFalse();
            assertThat(fresh.get("conn").asString()).isEqualTo("next");
            assertThat(sumCounts(all)).isEqualTo(flood + other + 2);
        }
    }

    @Test
    void clientsPastTheCapAreSummedWithoutClientAndCounted() throws IOException {
        final Path file = dir.resolve("cap-clients.jsonl");
        try (AuditLog log = new AuditLog(
                new FileAuditSink(file, 1 << 20, 1),
                new MutableClock(T0),
                Duration.ofSeconds(1),
                100,
                0,
                null,
                Rate.parse("60/min"),
                2)) {
            for (int i = 0; i < 5; i++) {
                for (int n = 0; n <= i; n++) {
                    log.record(denied(client(i), "c" + i + "-" + n, Reason.PATTERN_DENIED, "chat"));
                }
            }
            log.flush();
            final List<JsonNode> nodes =
                    Files.readAllLines(file).stream().map(JSON::readTree).toList();
            assertThat(sumCounts(nodes)).isEqualTo(15);
            assertThat(nodes).hasSize(3);
            assertThat(nodes.subList(0, 2))
                    .extracting(n ->
                            n.get("client").asString() + "×" + n.get("count").asLong())
                    .containsExactly(client(0) + "×1", client(1) + "×2");
            final JsonNode past = nodes.get(2);
            assertThat(past.get("client").isNull()).isTrue();
            assertThat(past.get("count").asLong()).isEqualTo(12);
            assertThat(past.get("detail").asString())
                    .isEqualTo("over 2 clients with an audit budget: the rest of their events, summed without client");
            assertThat(past.get("covers").get(0).get("count").asLong()).isEqualTo(12);
            assertThat(log.eventsPastClientCap()).isEqualTo(12);
        }
    }

    @Test
    void aSummedLineKeepsAtMostThirtyTwoCoversAndCountsTheRestUnbrokenDown() throws IOException {
        final Path file = dir.resolve("covers.jsonl");
        try (AuditLog log = new AuditLog(
                new FileAuditSink(file, 1 << 20, 1),
                new MutableClock(T0),
                Duration.ofSeconds(1),
                1000,
                0,
                "k".getBytes(StandardCharsets.UTF_8),
                Rate.parse("1/h"),
                100)) {
            for (int r = 0; r < 41; r++) {
                log.record(denied("203.0.113.7", "c" + r, Reason.PATTERN_DENIED, "route-" + r));
            }
            log.flush();
            final List<String> raw = Files.readAllLines(file);
            assertThat(MacChain.verify(raw, "k".getBytes(StandardCharsets.UTF_8))
                            .ok())
                    .isTrue();
            final List<JsonNode> nodes = raw.stream().map(JSON::readTree).toList();
            assertThat(nodes).hasSize(2);
            final JsonNode covers = nodes.get(1).get("covers");
            assertThat(nodes.get(1).get("count").asLong()).isEqualTo(40);
            assertThat(covers).hasSize(AuditLog.MAX_COVERS_PER_LINE + 1);
            final JsonNode rest = covers.get(AuditLog.MAX_COVERS_PER_LINE);
            assertThat(rest.get("reason").isNull()
                            && rest.get("route").isNull()
                            && rest.get("event").isNull())
                    .isTrue();
            assertThat(rest.get("count").asLong()).isEqualTo(40 - AuditLog.MAX_COVERS_PER_LINE);
        }
    }

    @Test
    void keepsAtMostSampleBytesOfThePayload() throws IOException {
        try (AuditLog log = AuditLog.from(policy(1 << 20, 1, 5, null), Clock.systemUTC())) {
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED)
                    .conn("a")
                    .sample("héllo wörld")
                    .build());
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED)
                    .conn("b")
                    .sample("\u0000\u0001\n\u0002xyz")
                    .build());
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED)
                    .conn("c")
                    .sample("ab\uD83D\uDE00")
                    .build());
            log.flush();
            final List<String> lines = lines();
            assertThat(JSON.readTree(lines.get(0)).get("sample").asString()).isEqualTo("héll");
            assertThat(lines.get(1)).contains("\"sample\":\"\\u0000\\u0001\\n\\u0002x\"");
            assertThat(JSON.readTree(lines.get(2)).get("sample").asString()).isEqualTo("ab"); // emoji is 4 bytes
        }
        try (AuditLog log = AuditLog.from(policy(1 << 20, 1, 0, null), Clock.systemUTC())) {
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED)
                    .conn("d")
                    .sample("secret payload")
                    .build());
            log.flush();
            assertThat(lines().get(3)).doesNotContain("sample").doesNotContain("secret payload");
        }
    }

    @Test
    void rotatesKeepingMaxFilesAndWholeLines() throws IOException {
        final int lines = 200;
        try (AuditLog log = AuditLog.from(policy(1000, 3, 0, null), Clock.systemUTC())) {
            for (int i = 0; i < lines; i++) {
                log.record(schemaViolation(client(i), "conn-" + i));
                if (i % 10 == 9) {
                    log.flush();
                }
            }
        }
        final Path logs = dir.resolve("logs");
        try (var files = Files.list(logs)) {
            assertThat(files.map(p -> p.getFileName().toString()).sorted())
                    .containsExactly("audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3");
        }
        long previous = Long.MAX_VALUE;
        for (String name : List.of("audit.jsonl.3", "audit.jsonl.2", "audit.jsonl.1", "audit.jsonl")) {
            final Path file = logs.resolve(name);
            assertThat(Files.size(file)).isLessThanOrEqualTo(1000);
            for (String line : Files.readAllLines(file)) {
                final JsonNode node = JSON.readTree(line); // whole lines only: every one parses
                final long n = Long.parseLong(node.get("conn").asString().substring(5));
                assertThat(previous == Long.MAX_VALUE || n == previous + 1).isTrue();
                previous = n;
            }
        }
        assertThat(previous).isEqualTo(lines - 1);
    }

    @Test
    void chainsMacsAcrossRotationAndRestart() throws IOException {
        final String key = "k3y";
        final byte[] keyBytes = key.getBytes(StandardCharsets.UTF_8);
        for (int run = 0; run < 2; run++) {
            try (AuditLog log = AuditLog.from(policy(2000, 10, 0, key), Clock.systemUTC())) {
                for (int i = 0; i < 20; i++) {
                    log.record(schemaViolation("run" + run + "-" + i));
                    log.flush();
                }
            }
        }
        final Path logs = dir.resolve("logs");
        final List<String> all = new ArrayList<>();
        for (int n = 10; n >= 1; n--) {
            final Path rotated = logs.resolve("audit.jsonl." + n);
            if (Files.exists(rotated)) {
                all.addAll(Files.readAllLines(rotated));
            }
        }
        assertThat(Files.exists(logs.resolve("audit.jsonl.1"))).isTrue();
        all.addAll(lines());
        assertThat(all).hasSize(40).allMatch(l -> l.matches(".*,\"seq\":\\d+,\"mac\":\"[0-9a-f]{64}\"}"));
        // Numbered 0 to 39 across the rotations and the restart, as the macs are chained.
        for (int i = 0; i < all.size(); i++) {
            assertThat(MacChain.seqOf(all.get(i))).as("line %d", i).isEqualTo(i);
        }
        assertThat(MacChain.verify(all, keyBytes).ok()).isTrue();
        assertThat(MacChain.verify(all, "other".getBytes(StandardCharsets.UTF_8))
                        .brokenLine())
                .isEqualTo(1);

        final List<String> tampered = new ArrayList<>(all);
        tampered.set(6, tampered.get(6).replace("alice", "mallory"));
        final MacChain.Result result = MacChain.verify(tampered, keyBytes);
        assertThat(result.ok()).isFalse();
        assertThat(result.brokenLine()).isEqualTo(7);
        assertThat(result.line()).contains("mallory");

        final List<String> removed = new ArrayList<>(all);
        removed.remove(10);
        assertThat(MacChain.verify(removed, keyBytes).brokenLine()).isEqualTo(11);
        // A file whose predecessor is gone: its first line anchors the chain.
        assertThat(MacChain.verify(all.subList(15, 40), keyBytes, null).ok()).isTrue();
        assertThat(MacChain.verify(all.subList(15, 40), keyBytes).brokenLine()).isEqualTo(1);
    }

    @Test
    void survivesSinkFailuresAndCountsLostLines() {
        final AtomicInteger calls = new AtomicInteger();
        final List<String> written = new ArrayList<>();
        final LineSink flaky = new LineSink() {
            @Override
            public void write(String line) throws IOException {
                if (calls.incrementAndGet() <= 2) {
                    throw new IOException("No space left on device");
                }
                written.add(line);
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        try (AuditLog log = new AuditLog(flaky, Clock.systemUTC(), Duration.ofSeconds(1), 100, 0, null)) {
            log.record(schemaViolation(client(1), "a"));
            log.record(schemaViolation(client(2), "b"));
            log.flush();
            assertThat(log.linesFailed()).isEqualTo(2);
            log.record(schemaViolation(client(3), "c"));
            log.flush();
            assertThat(log.linesWritten()).isEqualTo(1);
            assertThat(written).hasSize(1).allMatch(l -> l.contains("\"conn\":\"c\""));
        }
    }

    @Test
    void newAuditFilesAndTheirDirectoryAreForTheOperatorOnly() throws IOException {
        assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"), "POSIX file modes");
        final Path file = dir.resolve("private/logs/audit.jsonl");
        try (AuditLog log = new AuditLog(
                new FileAuditSink(file, 300, 2), new MutableClock(T0), Duration.ofSeconds(1), 100, 0, null)) {
            for (int i = 0; i < 5; i++) {
                log.record(schemaViolation("p" + i));
                log.flush();
            }
        }
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file)))
                .isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file.resolveSibling("audit.jsonl.1"))))
                .as("a rotated file keeps the mode")
                .isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file.getParent())))
                .isEqualTo("rwx------");
    }
}
