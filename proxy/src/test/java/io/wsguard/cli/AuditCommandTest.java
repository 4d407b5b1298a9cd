package io.wsguard.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.audit.AuditEvent;
import io.wsguard.audit.AuditEvent.Kind;
import io.wsguard.audit.AuditLog;
import io.wsguard.check.Reason;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.Rate;
import io.wsguard.policy.Secret;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

@Timeout(20)
class AuditCommandTest {

    private static final Instant NOW = Instant.parse("2026-11-23T10:30:00Z");
    private static final String KEY = "s3cret-key";

    @TempDir
    Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(Map<String, String> env, String... args) {
        final CommandLine cmd =
                new CommandLine(new AuditCommand(env::get, Clock.fixed(NOW, ZoneOffset.UTC), Duration.ofMillis(20)));
        cmd.setOut(new PrintWriter(out, true));
        cmd.setErr(new PrintWriter(err, true));
        return cmd.execute(args);
    }

    private int run(String... args) {
        return run(Map.of(), args);
    }

    /** Writes a real log through AuditLog: 3 origin_denied from one client, then others. */
    private Path writeLog(String key, long maxFileSize) throws IOException {
        final Path file = dir.resolve("audit.jsonl");
        final AuditPolicy policy = new AuditPolicy(
                AuditPolicy.Sink.FILE,
                file,
                maxFileSize,
                5,
                0,
                Optional.ofNullable(key).map(Secret::new));
        try (AuditLog log = AuditLog.from(policy, Clock.systemUTC())) {
            for (int i = 0; i < 3; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.ORIGIN_DENIED)
                        .ts(NOW.minusSeconds(3600))
                        .route("chat")
                        .client("203.0.113.7")
                        .status(403)
                        .detail("origin not allowed")
                        .build());
            }
            log.flush();
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.MESSAGE_RATE)
                    .ts(NOW.minusSeconds(60))
                    .route("chat")
                    .client("198.51.100.9")
                    .conn("c1")
                    .sub("alice")
                    .action("close")
                    .closeCode(1008)
                    .detail("over 50/s")
                    .build());
            log.flush();
            for (int i = 0; i < 4; i++) {
                log.record(AuditEvent.builder(Kind.MODIFIED, Reason.SANITIZED)
                        .ts(NOW.minusSeconds(30))
                        .route("news")
                        .client("198.51.100.9")
                        .conn("c2")
                        .sub("bob")
                        .action("modify")
                        .detail("html stripped")
                        .build());
            }
        }
        return file;
    }

    @Test
    void printsOneHumanLinePerEvent() throws IOException {
        final Path file = writeLog(null, 1 << 20);
        assertThat(run(file.toString())).isZero();
        assertThat(out.toString().lines())
                .containsExactly(
                        "2026-11-23T09:30:00.000Z blocked handshake origin_denied route=chat client=203.0.113.7 "
                                + "status=403 ×3 origin not allowed",
                        "2026-11-23T10:29:00.000Z blocked message message_rate route=chat client=198.51.100.9 conn=c1 "
                                + "sub=alice action=close closeCode=1008 over 50/s",
                        "2026-11-23T10:29:30.000Z modified message sanitized route=news client=198.51.100.9 conn=c2 "
                                + "sub=bob action=modify ×4 html stripped");
    }

    @Test
    void filtersBySinceReasonRouteAndClient() throws IOException {
        final Path file = writeLog(null, 1 << 20);
        assertThat(run(file.toString(), "--since", "10m")).isZero();
        assertThat(out.toString().lines()).hasSize(2);
        out.getBuffer().setLength(0);
        assertThat(run(file.toString(), "--reason", "sanitized", "--json")).isZero();
        assertThat(out.toString().lines())
                .singleElement()
                .asString()
                .startsWith("{\"ts\":")
                .contains("\"count\":4");
        out.getBuffer().setLength(0);
        assertThat(run(file.toString(), "--route", "chat", "--client", "203.0.113.7"))
                .isZero();
        assertThat(out.toString().lines()).singleElement().asString().contains("origin_denied");
    }

    @Test
    void summarisesByCount() throws IOException {
        final Path file = writeLog(null, 1 << 20);
        assertThat(run(file.toString(), "--summary")).isZero();
        final String s = out.toString();
        assertThat(s).startsWith("8 events in 3 lines");
        assertThat(s).containsPattern("by reason:\\n  sanitized\\s+4\\n  origin_denied\\s+3\\n  message_rate\\s+1\\n");
        assertThat(s).containsPattern("by route:\\n  chat\\s+4\\n  news\\s+4\\n");
        assertThat(s).containsPattern("top clients:\\n  198.51.100.9\\s+5\\n  203.0.113.7\\s+3\\n");
        assertThat(s).containsPattern("top subjects:\\n  bob\\s+4\\n  alice\\s+1\\n");
    }

    @Test
    void verifiesTheChainAndReportsTheFirstBrokenLine() throws IOException {
        final Path file = writeLog(KEY, 1 << 20);
        assertThat(run(Map.of("WSGUARD_AUDIT_KEY", KEY), file.toString(), "--verify"))
                .isZero();
        assertThat(out.toString()).isEqualTo("OK (3 lines, sequence numbers 0 to 2)" + System.lineSeparator());

        final List<String> lines = new ArrayList<>(Files.readAllLines(file));
        lines.set(1, lines.get(1).replace("alice", "eve"));
        Files.write(file, lines, StandardCharsets.UTF_8);
        out.getBuffer().setLength(0);
        assertThat(run(Map.of("WSGUARD_AUDIT_KEY", KEY), file.toString(), "--verify"))
                .isEqualTo(1);
        assertThat(out.toString()).startsWith("broken chain at line 2: ").contains("eve");

        assertThat(run(Map.of("WSGUARD_AUDIT_KEY", "wrong"), file.toString(), "--verify"))
                .isEqualTo(1);
        assertThat(run(file.toString(), "--verify")).isEqualTo(2);
        assertThat(err.toString()).contains("WSGUARD_AUDIT_KEY");
    }

    /** One client over {@code linesPerClient: 1/h}: a line, then a summed line with covers, chained. */
    private Path writeSummedLog() throws IOException {
        final Path file = dir.resolve("summed.jsonl");
        final AuditPolicy policy = new AuditPolicy(
                AuditPolicy.Sink.FILE, file, 1 << 20, 5, 0, Optional.of(new Secret(KEY)), Rate.parse("1/h"));
        try (AuditLog log = AuditLog.from(policy, Clock.systemUTC())) {
            for (int i = 0; i < 2; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.ORIGIN_DENIED)
                        .ts(NOW.minusSeconds(90))
                        .route("chat")
                        .client("203.0.113.7")
                        .status(403)
                        .detail("origin not allowed")
                        .build());
            }
            log.flush();
            for (int i = 0; i < 3; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED)
                        .ts(NOW.minusSeconds(60))
                        .route("chat")
                        .client("203.0.113.7")
                        .conn("c" + i)
                        .action("close")
                        .closeCode(1008)
                        .detail("rule script-tag matched")
                        .build());
            }
            for (int i = 0; i < 4; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.MESSAGE_RATE)
                        .ts(NOW.minusSeconds(59))
                        .route("news")
                        .client("203.0.113.7")
                        .conn("d" + i)
                        .action("close")
                        .closeCode(1008)
                        .detail("over 50/s")
                        .build());
            }
        }
        return file;
    }

    @Test
    void readsAndVerifiesALineSummedOverTheClientsBudget() throws IOException {
        final Path file = writeSummedLog();
        assertThat(run(Map.of("WSGUARD_AUDIT_KEY", KEY), file.toString(), "--verify"))
                .isZero();
        assertThat(out.toString()).isEqualTo("OK (2 lines, sequence numbers 0 to 1)" + System.lineSeparator());

        out.getBuffer().setLength(0);
        assertThat(run(file.toString())).isZero();
        assertThat(out.toString().lines())
                .containsExactly(
                        "2026-11-23T10:28:30.000Z blocked handshake origin_denied route=chat client=203.0.113.7 "
                                + "status=403 ×2 origin not allowed",
                        "2026-11-23T10:29:00.000Z blocked message pattern_denied route=chat client=203.0.113.7 ×7 "
                                + "over audit.linesPerClient (1/h): the rest of the client's events, summed "
                                + "[blocked message pattern_denied route=chat "
                                + "×3, blocked message message_rate route=news ×4]");

        out.getBuffer().setLength(0);
        assertThat(run(file.toString(), "--summary")).isZero();
        assertThat(out.toString())
                .startsWith("9 events in 2 lines")
                .containsPattern("by reason:\\n  message_rate\\s+4\\n  pattern_denied\\s+3\\n  origin_denied\\s+2\\n")
                .containsPattern("by route:\\n  chat\\s+5\\n  news\\s+4\\n")
                .containsPattern("top clients:\\n  203.0.113.7\\s+9\\n");

        // A filter on reason or route matches a summed line through its covers, and counts only those.
        out.getBuffer().setLength(0);
        assertThat(run(file.toString(), "--summary", "--route", "news")).isZero();
        assertThat(out.toString())
                .startsWith("4 events in 1 lines")
                .containsPattern("by reason:\\n  message_rate\\s+4\\nby route:\\n  news\\s+4\\n");
        out.getBuffer().setLength(0);
        assertThat(run(file.toString(), "--reason", "message_rate", "--json")).isZero();
        assertThat(out.toString().lines()).singleElement().asString().contains("\"covers\":[");

        // The chain covers the covers: editing a count in them breaks it at that line.
        final List<String> lines = new ArrayList<>(Files.readAllLines(file));
        lines.set(1, lines.get(1).replace("\"count\":4}", "\"count\":1}"));
        Files.write(file, lines, StandardCharsets.UTF_8);
        out.getBuffer().setLength(0);
        assertThat(run(Map.of("WSGUARD_AUDIT_KEY", KEY), file.toString(), "--verify"))
                .isEqualTo(1);
        assertThat(out.toString()).startsWith("broken chain at line 2: ");
    }

    @Test
    void verifiesARotatedFileFromItsPredecessor() throws IOException {
        final Path file = writeLog(KEY, 400); // about one line per file
        assertThat(Files.exists(dir.resolve("audit.jsonl.2"))).isTrue();
        for (String name : List.of("audit.jsonl", "audit.jsonl.1", "audit.jsonl.2")) {
            out.getBuffer().setLength(0);
            assertThat(run(Map.of("WSGUARD_AUDIT_KEY", KEY), dir.resolve(name).toString(), "--verify"))
                    .as(name)
                    .isZero();
        }
        // Change the predecessor's last mac: the current file no longer continues it.
        final Path previous = dir.resolve("audit.jsonl.1");
        final String text = Files.readString(previous);
        final int at = text.lastIndexOf("\"mac\":\"") + 7;
        Files.writeString(
                previous, text.substring(0, at) + (text.charAt(at) == '0' ? '1' : '0') + text.substring(at + 1));
        out.getBuffer().setLength(0);
        assertThat(run(Map.of("WSGUARD_AUDIT_KEY", KEY), file.toString(), "--verify"))
                .isEqualTo(1);
        assertThat(out.toString()).startsWith("broken chain at line 1: ");
    }

    @Test
    void rejectsBadUsageWithExitCode2() throws IOException {
        final Path file = writeLog(null, 1 << 20);
        assertThat(run(file.toString(), "--since", "ten minutes")).isEqualTo(2);
        assertThat(run(file.toString(), "--summary", "--verify")).isEqualTo(2);
        assertThat(run(file.toString(), "--nope")).isEqualTo(2);
        assertThat(run(dir.resolve("missing.jsonl").toString())).isEqualTo(1);
    }

    @Test
    void followsNewLinesAcrossRotation() throws Exception {
        final Path file = dir.resolve("audit.jsonl");
        final String line = "{\"ts\":\"2026-11-23T10:29:59.000Z\",\"event\":\"blocked\",\"stage\":\"message\","
                + "\"reason\":\"pattern_denied\",\"route\":\"chat\",\"client\":null,\"conn\":\"%s\","
                + "\"sub\":null,\"origin\":null,\"action\":\"drop\",\"closeCode\":null,\"status\":null,"
                + "\"count\":1,\"detail\":\"d\"}\n";
        Files.writeString(file, String.format(line, "a"));
        final Thread follower = new Thread(() -> run(file.toString(), "--follow"));
        follower.start();
        try {
            await().atMost(Duration.ofSeconds(5)).until(() -> out.toString().contains("conn=a"));
            Files.writeString(file, String.format(line, "b"), StandardOpenOption.APPEND);
            await().atMost(Duration.ofSeconds(5)).until(() -> out.toString().contains("conn=b"));
            Files.move(file, dir.resolve("audit.jsonl.1"));
            Files.writeString(dir.resolve("audit.jsonl.1"), String.format(line, "c"), StandardOpenOption.APPEND);
            Files.writeString(file, String.format(line, "d"));
            await().atMost(Duration.ofSeconds(5)).until(() -> out.toString().contains("conn=d"));
            assertThat(out.toString().lines().map(l -> l.replaceAll(".*conn=(\\w).*", "$1")))
                    .containsExactly("a", "b", "c", "d");
        } finally {
            follower.interrupt();
            follower.join(5000);
        }
        assertThat(follower.isAlive()).isFalse();
    }
}
