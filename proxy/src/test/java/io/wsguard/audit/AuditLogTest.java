package io.wsguard.audit;

import io.wsguard.testing.MutableClock;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.wsguard.audit.AuditEvent.Kind;
import io.wsguard.check.Reason;
import io.wsguard.check.Stage;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.Secret;
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
        return new AuditPolicy(AuditPolicy.Sink.FILE, dir.resolve("logs/audit.jsonl"), maxFileSize, maxFiles,
                               sampleBytes, Optional.ofNullable(key).map(Secret::new));
    }

    private AuditPolicy policy() {
        return policy(1 << 20, 3, 0, null);
    }

    private List<String> lines() throws IOException {
        return Files.readAllLines(dir.resolve("logs/audit.jsonl"), StandardCharsets.UTF_8);
    }

    private static AuditEvent schemaViolation(String conn) {
        return AuditEvent.builder(Kind.BLOCKED, Reason.SCHEMA_VIOLATION)
                         .ts(T0).route("chat").client("203.0.113.7").conn(conn).sub("alice")
                         .origin("https://chat.example.com").action("close").closeCode(1008)
                         .detail("$.text: expected string").build();
    }

    @Test
    void writesSpecLineWithFieldsInOrder() throws IOException {
        try (AuditLog log = AuditLog.from(policy(), Clock.systemUTC())) {
            log.record(schemaViolation("c1b7e"));
            log.flush();
            assertThat(lines()).containsExactly(
                    "{\"ts\":\"2026-11-23T10:15:02.117Z\",\"event\":\"blocked\",\"stage\":\"message\","
                    + "\"reason\":\"schema_violation\",\"route\":\"chat\",\"client\":\"203.0.113.7\","
                    + "\"conn\":\"c1b7e\",\"sub\":\"alice\",\"origin\":\"https://chat.example.com\","
                    + "\"action\":\"close\",\"closeCode\":1008,\"status\":null,\"count\":1,"
                    + "\"detail\":\"$.text: expected string\"}");
        }
    }

    @Test
    void writesNullsAndEscapesDetail() throws IOException {
        try (AuditLog log = AuditLog.from(policy(), Clock.systemUTC())) {
            log.record(new AuditEvent(null, Kind.CONFIG, Stage.CONFIG, Reason.CONFIG_REJECTED, null, null, null,
                                      null, null, null, null, null, "bad \"x\"\n\u0001ü", null));
            log.flush();
            final String line = lines().get(0);
            assertThat(line).contains("\"route\":null,\"client\":null,\"conn\":null,\"sub\":null,\"origin\":null,"
                                      + "\"action\":null,\"closeCode\":null,\"status\":null,\"count\":1");
            assertThat(line).endsWith("\"detail\":\"bad \\\"x\\\"\\n\\u0001ü\"}");
            assertThat(JSON.readTree(line).get("ts").asString()).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z");
        }
    }

    @Test
    void coalescesOneWindowPerKeyAndOpensANewOneAfterItEnds() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        try (AuditLog log = AuditLog.from(policy(), clock)) {
            for (int i = 0; i < 3; i++) {
                log.record(schemaViolation("c1"));
            }
            log.record(schemaViolation("c2"));
            clock.advance(Duration.ofMillis(1000));
            // The writer ends both windows on its own once the clock passes their end.
            await().atMost(Duration.ofSeconds(5)).until(() -> log.linesWritten() == 2);
            log.record(schemaViolation("c1"));
            log.record(schemaViolation("c1"));
            log.flush();
            final List<JsonNode> nodes = lines().stream().map(JSON::readTree).toList();
            assertThat(nodes).extracting(n -> n.get("conn").asString() + "×" + n.get("count").asLong())
                             .containsExactly("c1×3", "c2×1", "c1×2");
        }
    }

    @Test
    void coalescesRefusedHandshakesPerClientAndRoute() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        try (AuditLog log = AuditLog.from(policy(), clock)) {
            for (int i = 0; i < 5; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.NO_ROUTE).client("198.51.100.1")
                                     .action("refuse").status(404).detail("no route").build());
            }
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.NO_ROUTE).client("198.51.100.2")
                                 .action("refuse").status(404).detail("no route").build());
            log.flush();
            assertThat(lines().stream().map(JSON::readTree))
                    .extracting(n -> n.get("client").asString() + "×" + n.get("count").asLong())
                    .containsExactly("198.51.100.1×5", "198.51.100.2×1");
        }
    }

    @Test
    void countsEveryEventExactlyUnderContentionWithBoundedWindows() throws Exception {
        final int threads = 16;
        final int perThread = 50_000;
        try (AuditLog log = AuditLog.from(policy(1L << 30, 1, 0, null), Clock.systemUTC(),
                                          Duration.ofMillis(50))) {
            final CountDownLatch start = new CountDownLatch(1);
            final List<Thread> workers = new ArrayList<>();
            final AtomicInteger failures = new AtomicInteger();
            for (int t = 0; t < threads; t++) {
                final int id = t;
                final Thread worker = new Thread(() -> {
                    try {
                        start.await();
                        for (int i = 0; i < perThread; i++) {
                            // 30,000 connections: more than the 10,000 open windows allowed.
                            log.record(AuditEvent.builder(Kind.BLOCKED, i % 2 == 0 ? Reason.MESSAGE_RATE
                                                                                   : Reason.PATTERN_DENIED)
                                                 .route("r" + (i % 3)).conn("c" + ((i * 7 + id) % 30_000))
                                                 .client("10.0.0." + id).detail("x").build());
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
            nodes.stream().filter(n -> n.get("detail").asString().equals(AuditLog.OVERFLOW_DETAIL))
                 .forEach(n -> assertThat(n.get("conn").isNull() && n.get("client").isNull()).isTrue());
        }
    }

    @Test
    void overflowsPastTheOpenWindowCapWithExactCounts() throws IOException {
        final MutableClock clock = new MutableClock(T0);
        final Path file = dir.resolve("cap.jsonl");
        try (AuditLog log = new AuditLog(new FileAuditSink(file, 1 << 20, 1), clock, Duration.ofSeconds(1), 3, 0,
                                         null)) {
            for (int i = 0; i < 10; i++) {
                log.record(schemaViolation("c" + i));
            }
            log.record(schemaViolation("c9"));
            log.flush();
            final List<JsonNode> nodes = Files.readAllLines(file).stream().map(JSON::readTree).toList();
            assertThat(nodes).hasSize(4);
            assertThat(nodes.subList(0, 3)).extracting(n -> n.get("count").asLong()).containsOnly(1L);
            final JsonNode overflow = nodes.get(3);
            assertThat(overflow.get("count").asLong()).isEqualTo(8);
            assertThat(overflow.get("detail").asString()).isEqualTo(AuditLog.OVERFLOW_DETAIL);
            assertThat(overflow.get("conn").isNull()).isTrue();
            assertThat(overflow.get("client").isNull()).isTrue();
            assertThat(overflow.get("route").asString()).isEqualTo("chat");
        }
    }

    @Test
    void keepsAtMostSampleBytesOfThePayload() throws IOException {
        try (AuditLog log = AuditLog.from(policy(1 << 20, 1, 5, null), Clock.systemUTC())) {
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED).conn("a").sample("héllo wörld").build());
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED).conn("b").sample("\u0000\u0001\n\u0002xyz").build());
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED).conn("c").sample("ab\uD83D\uDE00").build());
            log.flush();
            final List<String> lines = lines();
            assertThat(JSON.readTree(lines.get(0)).get("sample").asString()).isEqualTo("héll");
            assertThat(lines.get(1)).contains("\"sample\":\"\\u0000\\u0001\\n\\u0002x\"");
            assertThat(JSON.readTree(lines.get(2)).get("sample").asString()).isEqualTo("ab"); // emoji is 4 bytes
        }
        try (AuditLog log = AuditLog.from(policy(1 << 20, 1, 0, null), Clock.systemUTC())) {
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED).conn("d").sample("secret payload").build());
            log.flush();
            assertThat(lines().get(3)).doesNotContain("sample").doesNotContain("secret payload");
        }
    }

    @Test
    void rotatesKeepingMaxFilesAndWholeLines() throws IOException {
        final int lines = 200;
        try (AuditLog log = AuditLog.from(policy(1000, 3, 0, null), Clock.systemUTC())) {
            for (int i = 0; i < lines; i++) {
                log.record(schemaViolation("conn-" + i));
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
        assertThat(MacChain.verify(all, "other".getBytes(StandardCharsets.UTF_8)).brokenLine()).isEqualTo(1);

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
            log.record(schemaViolation("a"));
            log.record(schemaViolation("b"));
            log.flush();
            assertThat(log.linesFailed()).isEqualTo(2);
            log.record(schemaViolation("c"));
            log.flush();
            assertThat(log.linesWritten()).isEqualTo(1);
            assertThat(written).hasSize(1).allMatch(l -> l.contains("\"conn\":\"c\""));
        }
    }

    @Test
    void newAuditFilesAndTheirDirectoryAreForTheOperatorOnly() throws IOException {
        assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"), "POSIX file modes");
        final Path file = dir.resolve("private/logs/audit.jsonl");
        try (AuditLog log = new AuditLog(new FileAuditSink(file, 300, 2), new MutableClock(T0), Duration.ofSeconds(1), 100, 0, null)) {
            for (int i = 0; i < 5; i++) {
                log.record(schemaViolation("p" + i));
                log.flush();
            }
        }
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file.resolveSibling("audit.jsonl.1"))))
                .as("a rotated file keeps the mode").isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file.getParent()))).isEqualTo("rwx------");
    }
}
