package io.wsguard.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.audit.AuditEvent;
import io.wsguard.audit.AuditEvent.Kind;
import io.wsguard.audit.AuditLog;
import io.wsguard.audit.MacChain;
import io.wsguard.check.Reason;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.Secret;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import tools.jackson.databind.json.JsonMapper;

/**
 * The ends of the audit log's integrity chain: lines removed from its start, with no earlier file
 * to show it, and lines cut from its end, shown against the head the admin port published. Real
 * files written by the real log (and by a running proxy), checked by the real command.
 */
@Timeout(60)
class AuditChainEndsTest {

    private static final String KEY = "chain-ends-key";
    private static final Map<String, String> ENV = Map.of("WSGUARD_AUDIT_KEY", KEY);

    @TempDir
    Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int verify(Path file, String... more) {
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        final CommandLine cmd = new CommandLine(new AuditCommand(ENV::get, Clock.systemUTC(), Duration.ofMillis(20)));
        cmd.setOut(new PrintWriter(out, true));
        cmd.setErr(new PrintWriter(err, true));
        final List<String> args = new ArrayList<>(List.of(file.toString(), "--verify"));
        args.addAll(List.of(more));
        return cmd.execute(args.toArray(String[]::new));
    }

    /** Six lines from six clients (one client's events would share a line), through the real writer. */
    private Path writeLog(String key) throws Exception {
        final Path file = dir.resolve("audit.jsonl");
        final AuditPolicy policy = new AuditPolicy(
                AuditPolicy.Sink.FILE,
                file,
                1 << 20,
                5,
                0,
                Optional.ofNullable(key).map(Secret::new));
        try (AuditLog log = AuditLog.from(policy, Clock.systemUTC())) {
            for (int i = 0; i < 6; i++) {
                log.record(AuditEvent.builder(Kind.BLOCKED, Reason.PATTERN_DENIED)
                        .ts(Instant.now())
                        .route("chat")
                        .client("203.0.113." + i)
                        .conn("c" + i)
                        .action("close")
                        .closeCode(1008)
                        .detail("rule script-tag matched")
                        .build());
            }
        }
        return file;
    }

    @Test
    void aChainWhoseFirstLinesWereRemovedSaysEarlierLinesAreMissing() throws Exception {
        final Path file = writeLog(KEY);
        assertThat(verify(file)).isZero();
        assertThat(out.toString().strip()).isEqualTo("OK (6 lines, sequence numbers 0 to 5)");

        // No audit.jsonl.1: nothing but the numbering can show that the first two lines are gone.
        final List<String> lines = Files.readAllLines(file);
        Files.write(file, lines.subList(2, lines.size()), StandardCharsets.UTF_8);
        assertThat(verify(file)).isEqualTo(1);
        assertThat(out.toString())
                .startsWith("broken chain at line 1: ")
                .contains("the chain starts at sequence number 2, not 0: earlier lines are missing");
    }

    @Test
    void linesWrittenWithoutAKeyCarryNoSequenceNumber() throws Exception {
        final Path file = writeLog(null);
        assertThat(Files.readAllLines(file)).hasSize(6).allSatisfy(line -> assertThat(line)
                .doesNotContain("\"seq\"")
                .doesNotContain("\"mac\"")
                .endsWith("\"detail\":\"rule script-tag matched\"}"));
    }

    @Test
    void aChainCutAtItsEndFailsAgainstTheHeadTheAdminPortPublished() throws Exception {
        final Path file = dir.resolve("audit.jsonl");
        final HttpClient http = HttpClient.newHttpClient();
        final String routes = """
                - name: chat
                  match: { path: /chat }
                  upstream: { targets: ["ws://127.0.0.1:9/chat"] }
                  auth: none
                """;
        final String admin = "admin: { host: 127.0.0.1, port: 0 }\n";
        Map<String, Object> head;
        try (RunningProxy proxy = RunningProxy.start(
                PolicyText.in(dir).routes(routes).extra(admin).auditOptions("integrityKey: " + KEY))) {
            for (int i = 0; i < 3; i++) {
                refuseOnePlainRequest(http, proxy); // 426 not_websocket: one audit line each, once flushed
            }
            assertThat(proxy.auditLines()).hasSize(3);
            head = adminHead(http, proxy);
            assertThat(head).containsEntry("seq", 2);
            assertThat(head.get("mac")).isEqualTo(MacChain.macOf(lastLine(file)));
            assertThat(get(http, proxy.server().adminUrl() + "/metrics").body())
                    .containsPattern("(?m)^wsguard_audit_lines_total(\\{[^}]*\\})? 3\\.0$");
        }
        // A restart continues the numbering from the last line on disk, as it continues the macs.
        try (RunningProxy proxy = RunningProxy.start(
                PolicyText.in(dir).routes(routes).extra(admin).auditOptions("integrityKey: " + KEY))) {
            assertThat(adminHead(http, proxy)).isEqualTo(head);
            refuseOnePlainRequest(http, proxy);
            assertThat(proxy.auditLines()).hasSize(4);
            head = adminHead(http, proxy);
            assertThat(head).containsEntry("seq", 3);
        }
        final String recordedSeq = String.valueOf(head.get("seq"));
        final String recordedMac = (String) head.get("mac");
        assertThat(verify(file, "--expect-last", recordedSeq, "--expect-mac", recordedMac))
                .isZero();
        assertThat(out.toString().strip()).isEqualTo("OK (4 lines, sequence numbers 0 to 3)");

        // The newest line cut off: still a perfect chain on its own, but short of the head recorded.
        final List<String> lines = Files.readAllLines(file);
        Files.write(file, lines.subList(0, lines.size() - 1), StandardCharsets.UTF_8);
        assertThat(verify(file)).isZero();
        assertThat(verify(file, "--expect-last", recordedSeq, "--expect-mac", recordedMac))
                .isEqualTo(1);
        assertThat(out.toString().strip())
                .isEqualTo("broken chain at its end: the chain ends at sequence number 2,"
                        + " but reached 3 when its head was recorded: the newest 1 lines are missing");
    }

    @Test
    void oldChainsWithoutSequenceNumbersStillVerifyAndAreContinuedFromZero() throws Exception {
        final Path file = dir.resolve("audit.jsonl");
        // Two lines as wsguard wrote them before it numbered the chain: the mac over the previous mac and the body.
        final List<String> old = new ArrayList<>();
        String prev = "";
        for (int i = 0; i < 2; i++) {
            final String body =
                    "{\"ts\":\"2026-11-23T10:15:0" + i + ".117Z\",\"event\":\"blocked\",\"stage\":\"handshake\","
                            + "\"reason\":\"origin_denied\",\"route\":\"chat\","
                            + "\"client\":\"203.0.113.7\",\"conn\":null,"
                            + "\"sub\":null,\"origin\":\"https://evil.example\",\"action\":null,\"closeCode\":null,"
                            + "\"status\":403,\"count\":1,\"detail\":\"origin not in routes[].origin.allow\"";
            prev = hmac(prev + body);
            old.add(body + ",\"mac\":\"" + prev + "\"}");
        }
        Files.write(file, old, StandardCharsets.UTF_8);
        assertThat(verify(file)).isZero();
        assertThat(out.toString().strip())
                .isEqualTo("OK (2 lines; they carry no sequence numbers, so lines cut from"
                        + " the start or the end cannot be told)");
        assertThat(verify(file, "--expect-last", "1")).isEqualTo(1);
        assertThat(out.toString()).contains("no line carries a sequence number");

        final AuditPolicy policy =
                new AuditPolicy(AuditPolicy.Sink.FILE, file, 1 << 20, 5, 0, Optional.of(new Secret(KEY)));
        try (AuditLog log = AuditLog.from(policy, Clock.systemUTC())) {
            log.record(AuditEvent.builder(Kind.BLOCKED, Reason.ORIGIN_DENIED)
                    .ts(Instant.now())
                    .route("chat")
                    .client("203.0.113.8")
                    .status(403)
                    .detail("origin not in routes[].origin.allow")
                    .build());
        }
        assertThat(MacChain.seqOf(lastLine(file))).isZero();
        assertThat(verify(file)).isZero();
        assertThat(out.toString().strip()).isEqualTo("OK (3 lines: 2 without sequence numbers, then 0 to 0)");
    }

    private static void refuseOnePlainRequest(HttpClient http, RunningProxy proxy) throws Exception {
        assertThat(get(http, "http://127.0.0.1:" + proxy.port() + "/chat").statusCode())
                .isEqualTo(426);
        proxy.server().flushAudit(); // ends the one-second window: each refusal is its own line
    }

    // Jackson reads a JSON object as a Map with String keys; Map.class cannot say so.
    @SuppressWarnings("unchecked")
    private static Map<String, Object> adminHead(HttpClient http, RunningProxy proxy) throws Exception {
        final HttpResponse<String> response = get(http, proxy.server().adminUrl() + "/admin/audit/head");
        assertThat(response.statusCode()).isEqualTo(200);
        return JsonMapper.builder().build().readValue(response.body(), Map.class);
    }

    private static HttpResponse<String> get(HttpClient http, String uri) throws Exception {
        return http.send(
                HttpRequest.newBuilder(URI.create(uri))
                        .timeout(Duration.ofSeconds(10))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static String lastLine(Path file) throws Exception {
        final List<String> lines = Files.readAllLines(file);
        return lines.get(lines.size() - 1);
    }

    private static String hmac(String text) throws Exception {
        final Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(KEY.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        return HexFormat.of().formatHex(mac.doFinal(text.getBytes(StandardCharsets.UTF_8)));
    }
}
