package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.cli.AuditCommand;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * One address opening a connection per denied message (issue 14, item 6): the audit log groups the
 * refusals per client, route and reason, and gives the client {@code audit.linesPerClient} lines,
 * summing the rest into one line; the counts add up to every refusal, and another client keeps
 * its own lines. Through a running proxy that believes X-Forwarded-For from 127.0.0.1, so that one
 * test acts as two clients.
 */
@Timeout(120)
class AuditFloodTest {

    private static final String FLOODER = "203.0.113.7";
    private static final String BYSTANDER = "198.51.100.9";
    private static final int FLOOD = 2_000;
    private static final int EVERY = 100; // the bystander's one denied message per this many of the flood's

    @TempDir
    Path dir;

    @Test
    void thousandsOfConnectionsFromOneClientWriteAtMostItsBudgetAndCountEveryRefusal() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                RunningProxy proxy = RunningProxy.start(PolicyText.in(dir)
                        .routes("""
                     - name: chat
                       match: { path: /chat }
                       upstream: { targets: [%1$s] }
                       auth: none
                       messages: { deny: [ { name: script-tag, pattern: "(?i)<\\\\s*script" } ] }
                     - name: admin
                       match: { path: /admin }
                       upstream: { targets: [%1$s] }
                       auth: none
                       messages: { deny: [ { name: script-tag, pattern: "(?i)<\\\\s*script" } ] }
                     """.formatted(upstream.uri("/echo")))
                        .extra("proxy: { trustedProxies: [127.0.0.1/32] }\nadmin: { host: 127.0.0.1, port: 0 }\n")
                        .auditOptions("linesPerClient: 2/h"))) {
            final Map<Integer, AtomicInteger> closeCodes = new ConcurrentHashMap<>();
            int toAdminCount = 0;
            final ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                final List<Future<?>> sent = new ArrayList<>();
                for (int i = 0; i < FLOOD; i++) {
                    final boolean admin = i % 4 == 0;
                    if (admin) {
                        toAdminCount++;
                    }
                    sent.add(pool.submit(() -> deniedMessage(proxy, admin ? "/admin" : "/chat", FLOODER, closeCodes)));
                    if (i % EVERY == 0) {
                        sent.add(pool.submit(() -> deniedMessage(proxy, "/chat", BYSTANDER, closeCodes)));
                    }
                }
                for (Future<?> f : sent) {
                    f.get();
                }
            } finally {
                pool.shutdownNow();
            }
            final int bystanderRefusals = FLOOD / EVERY;

            // Every connection was closed 1008, and the upstream never got a denied message.
            assertThat(closeCodes).containsOnlyKeys(1008);
            assertThat(closeCodes.get(1008)).hasValue(FLOOD + bystanderRefusals);
            assertThat(upstream.messages()).noneMatch(m -> String.valueOf(m).contains("script"));

            final List<Map<String, Object>> lines = proxy.auditLines();
            final List<Map<String, Object>> flooder =
                    lines.stream().filter(l -> FLOODER.equals(l.get("client"))).toList();
            final List<Map<String, Object>> bystander = lines.stream()
                    .filter(l -> BYSTANDER.equals(l.get("client")))
                    .toList();
            // Exact: every refusal counted once, however the lines were cut.
            assertThat(sum(flooder)).isEqualTo(FLOOD);
            assertThat(sum(bystander)).isEqualTo(bystanderRefusals);
            assertThat(lines).allMatch(l -> l.get("client") != null, "no event lost its client to an overflow line");

            // The flooder: its budget of 2 lines, then one summed line (written by the flush).
            assertThat(flooder).hasSize(3);
            for (Map<String, Object> line : flooder.subList(0, 2)) {
                assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "message")
                        .containsEntry("reason", "pattern_denied")
                        .containsEntry("action", "close")
                        .containsEntry("closeCode", 1008)
                        .containsEntry("detail", "rule script-tag matched")
                        .doesNotContainKey("covers");
            }
            final Map<String, Object> summed = flooder.get(2);
            assertThat(summed)
                    .containsEntry("event", "blocked")
                    .containsEntry("stage", "message")
                    .containsEntry("reason", "pattern_denied")
                    .containsEntry("conn", null)
                    .containsEntry(
                            "detail", "over audit.linesPerClient (2/h): the rest of the client's events, summed");
            // Jackson reads a JSON array of objects as a List of Maps; the parsed line only types it as Object.
            @SuppressWarnings("unchecked")
            final List<Map<String, Object>> covers = (List<Map<String, Object>>) summed.get("covers");
            assertThat(covers).allSatisfy(c -> assertThat(c)
                    .containsEntry("event", "blocked")
                    .containsEntry("stage", "message")
                    .containsEntry("reason", "pattern_denied"));
            assertThat(covers.stream()
                            .mapToLong(c -> ((Number) c.get("count")).longValue())
                            .sum())
                    .isEqualTo(((Number) summed.get("count")).longValue());
            // Per route, the flood's lines and the summed line's covers add up to what was sent there.
            assertThat(perRoute(flooder, covers, "admin")).isEqualTo(toAdminCount);
            assertThat(perRoute(flooder, covers, "chat")).isEqualTo(FLOOD - toAdminCount);

            // The bystander, interleaved with the flood, still has lines of its own with their detail.
            assertThat(bystander).isNotEmpty().hasSizeLessThanOrEqualTo(3);
            assertThat(bystander.get(0))
                    .containsEntry("reason", "pattern_denied")
                    .containsEntry("route", "chat")
                    .containsEntry("detail", "rule script-tag matched");

            // What was summed is counted where a scraper sees it.
            final long summedEvents =
                    sum(lines.stream().filter(l -> l.containsKey("covers")).toList());
            final String metrics = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + "/metrics"))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString())
                    .body();
            assertThat(metrics)
                    .containsPattern(
                            "(?m)^wsguard_audit_events_summed_total\\{why=\"client_budget\"} " + summedEvents + "\\.0$")
                    .containsPattern("(?m)^wsguard_audit_events_summed_total\\{why=\"client_cap\"} 0\\.0$");

            // wsguard audit reads the summed line: its covers count by reason and route.
            final StringWriter out = new StringWriter();
            final CommandLine audit = new CommandLine(new AuditCommand());
            audit.setOut(new PrintWriter(out, true));
            assertThat(audit.execute(dir.resolve("audit.jsonl").toString(), "--summary", "--client", FLOODER))
                    .isZero();
            assertThat(out.toString())
                    .startsWith(FLOOD + " events in 3 lines")
                    .containsPattern("pattern_denied\\s+" + FLOOD + "\\b")
                    .containsPattern("admin\\s+" + toAdminCount + "\\b")
                    .containsPattern("chat\\s+" + (FLOOD - toAdminCount) + "\\b");
        }
    }

    /**
     * One connection from {@code client} (by X-Forwarded-For) that sends one denied message and waits for the close.
     */
    private static Void deniedMessage(RunningProxy proxy, String path, String client, Map<Integer, AtomicInteger> codes)
            throws Exception {
        try (RawUpgrade ws = RawUpgrade.send(proxy.port(), path, Map.of("X-Forwarded-For", client))) {
            assertThat(ws.status()).isEqualTo(101);
            ws.sendFrame(true, false, 0x1, "<script>alert(1)</script>".getBytes(StandardCharsets.UTF_8));
            codes.computeIfAbsent(ws.awaitCloseCode(), code -> new AtomicInteger())
                    .incrementAndGet();
        }
        return null;
    }

    private static long sum(List<Map<String, Object>> lines) {
        return lines.stream()
                .mapToLong(l -> ((Number) l.get("count")).longValue())
                .sum();
    }

    private static long perRoute(List<Map<String, Object>> lines, List<Map<String, Object>> covers, String route) {
        final long inLines = lines.stream()
                .filter(l -> !l.containsKey("covers") && route.equals(l.get("route")))
                .mapToLong(l -> ((Number) l.get("count")).longValue())
                .sum();
        final long inCovers = covers.stream()
                .filter(c -> route.equals(c.get("route")))
                .mapToLong(c -> ((Number) c.get("count")).longValue())
                .sum();
        return inLines + inCovers;
    }
}
