package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.testing.AuditLines;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code audit.connections: true} on a real proxy with real clients: every way a connection ends
 * gives exactly one {@code connection} line, with the messages and bytes relayed each way, the close
 * code, who closed and the upstream target. Each test runs one connection on a route relayed as
 * frames come ({@code /plain}: only a size limit; with a verified token, behind a trusted proxy) and
 * one on a route whose messages are inspected ({@code /inspected}: deny rules), so both relay paths
 * are covered.
 */
@Timeout(60)
class ConnectionLogTest {

    private static final String SECRET = "an HS256 test secret of at least thirty-two bytes";
    private static final String FORWARDED_CLIENT = "203.0.113.7";
    private static final String ORIGIN = "https://chat.example.com";

    /** What {@link #exchange} relays on a connection: four messages each way, of known sizes. */
    private static final List<String> ECHOED = List.of("one", "two-two", "three-three-three");

    private static final String PUSHED = "the upstream's own answer";
    private static final String PUSH = "push-text:"
            + Base64.getUrlEncoder().withoutPadding().encodeToString(PUSHED.getBytes(StandardCharsets.UTF_8));

    private static UpstreamServer upstream;
    private static TestClient client;

    @TempDir
    Path dir;

    @RegisterExtension
    final CloseAfterEach closeAfter = new CloseAfterEach();

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        upstream.close();
    }

    @Test
    void aConnectionTheClientClosesGivesOneLineClosedByTheClient() throws Exception {
        final RunningProxy proxy = proxy("connections: true");
        final Pair pair = openBoth(proxy);
        final Counts plain = exchange(pair.plain);
        final Counts inspected = exchange(pair.inspected);

        pair.plain.session.close(4000, "bye from plain", Callback.NOOP);
        pair.inspected.session.close(1000, "bye", Callback.NOOP);

        final List<Map<String, Object>> lines = awaitConnectionLines(proxy, 2);
        assertLine(line(lines, "plain"), plain, "client", "client_closed", 4000, "bye from plain");
        assertLine(line(lines, "inspected"), inspected, "client", "client_closed", 1000, "bye");
        assertThat(line(lines, "plain"))
                .containsEntry("client", FORWARDED_CLIENT)
                .containsEntry("sub", "alice")
                .containsEntry("origin", ORIGIN)
                .containsEntry("target", upstream.uri("/plain").toString())
                .containsEntry("detail", "");
        assertThat(line(lines, "inspected"))
                .containsEntry("client", "127.0.0.1")
                .containsEntry("sub", null)
                .containsEntry("target", upstream.uri("/inspected").toString());
    }

    @Test
    void aConnectionTheUpstreamClosesGivesOneLineClosedByTheUpstream() throws Exception {
        final RunningProxy proxy = proxy("connections: true");
        final Pair pair = openBoth(proxy);
        final String close = "close:4001:upstream done";
        final Counts plain = exchange(pair.plain).plusIn(close);
        final Counts inspected = exchange(pair.inspected).plusIn(close);

        pair.plain.send(close);
        pair.inspected.send(close);
        assertThat(pair.plain.awaitClose()).isTrue();
        assertThat(pair.plain.closeCode).isEqualTo(4001);

        final List<Map<String, Object>> lines = awaitConnectionLines(proxy, 2);
        assertLine(line(lines, "plain"), plain, "upstream", "upstream_closed", 4001, "upstream done");
        assertLine(line(lines, "inspected"), inspected, "upstream", "upstream_closed", 4001, "upstream done");
    }

    @Test
    void anIdleConnectionGivesOneLineClosedByTheProxyForIdleTime() throws Exception {
        final RunningProxy proxy = proxy("connections: true");
        final TestClient.Recorder plain = connectPlain(proxy, "/plain-idle");
        final TestClient.Recorder inspected =
                client.connect(proxy.uri("/inspected-idle"), Map.of("Origin", ORIGIN), List.of());
        final Counts plainCounts = exchange(plain);
        final Counts inspectedCounts = exchange(inspected);

        assertThat(plain.awaitClose()).isTrue();
        assertThat(inspected.awaitClose()).isTrue();
        assertThat(plain.closeCode).isEqualTo(1001);

        final List<Map<String, Object>> lines = awaitConnectionLines(proxy, 2);
        assertLine(line(lines, "plain-idle"), plainCounts, "proxy", "idle_timeout", 1001, "session expired");
        assertLine(line(lines, "inspected-idle"), inspectedCounts, "proxy", "idle_timeout", 1001, "session expired");
        assertThat(line(lines, "plain-idle")).containsEntry("detail", "idle timeout 1s");
        assertThat(((Number) line(lines, "plain-idle").get("durationMs")).longValue())
                .isGreaterThanOrEqualTo(1000);
    }

    @Test
    void anOperatorsCloseGivesOneLineClosedByTheProxyForTheOperator() throws Exception {
        final RunningProxy proxy = proxy("connections: true");
        final Pair pair = openBoth(proxy);
        final Counts plain = exchange(pair.plain);
        final Counts inspected = exchange(pair.inspected);

        for (String route : List.of("plain", "inspected")) {
            final HttpResponse<String> response = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(URI.create(
                                            proxy.server().adminUrl() + "/admin/connections/close?route=" + route))
                                    .POST(HttpRequest.BodyPublishers.noBody())
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
            assertThat(response.statusCode()).isEqualTo(200);
        }
        assertThat(pair.plain.awaitClose()).isTrue();
        assertThat(pair.plain.closeCode).isEqualTo(1008);

        final List<Map<String, Object>> lines = awaitConnectionLines(proxy, 2);
        assertLine(line(lines, "plain"), plain, "proxy", "closed_by_operator", 1008, "closed by operator");
        assertLine(line(lines, "inspected"), inspected, "proxy", "closed_by_operator", 1008, "closed by operator");
        assertThat(line(lines, "plain")).containsEntry("detail", "closed by operator (route=plain)");
    }

    @Test
    void aPolicyViolationGivesOneLineClosedByTheProxyForTheRuleWithoutTheRefusedMessage() throws Exception {
        final RunningProxy proxy = proxy("connections: true");
        final Pair pair = openBoth(proxy);
        final Counts plain = exchange(pair.plain);
        final Counts inspected = exchange(pair.inspected);

        pair.plain.send("x".repeat(2048)); // over the plain route's maxSize: 1009
        pair.inspected.send("this is forbidden"); // a deny rule: 1008
        assertThat(pair.plain.awaitClose()).isTrue();
        assertThat(pair.inspected.awaitClose()).isTrue();
        assertThat(pair.plain.closeCode).isEqualTo(1009);
        assertThat(pair.inspected.closeCode).isEqualTo(1008);

        final List<Map<String, Object>> lines = awaitConnectionLines(proxy, 2);
        assertLine(line(lines, "plain"), plain, "proxy", "message_too_big", 1009, "message too big");
        assertLine(line(lines, "inspected"), inspected, "proxy", "pattern_denied", 1008, "pattern_denied");
        assertThat(line(lines, "inspected")).containsEntry("detail", "rule forbidden matched");
        // The refusals have their own blocked lines, as before.
        assertThat(proxy.auditLines())
                .filteredOn(l -> "blocked".equals(l.get("event")))
                .extracting(l -> l.get("reason"))
                .containsExactlyInAnyOrder("message_too_big", "pattern_denied");
    }

    @Test
    void aDrainGivesOneLineClosedByTheProxyForTheDrain() throws Exception {
        final RunningProxy proxy = proxy("connections: true");
        final Pair pair = openBoth(proxy);
        final Counts plain = exchange(pair.plain);
        final Counts inspected = exchange(pair.inspected);

        proxy.server().drainAndStop();
        assertThat(pair.plain.awaitClose()).isTrue();
        assertThat(pair.plain.closeCode).isEqualTo(1001);

        // Stopped: the log was flushed and closed at the stop.
        final List<Map<String, Object>> lines = connectionLines(AuditLines.read(dir.resolve("audit.jsonl")));
        assertThat(lines).hasSize(2);
        assertLine(line(lines, "plain"), plain, "proxy", "drain", 1001, "wsguard shutting down");
        assertLine(line(lines, "inspected"), inspected, "proxy", "drain", 1001, "wsguard shutting down");
    }

    @Test
    void withoutAuditConnectionsThereAreNoConnectionLines() throws Exception {
        final RunningProxy proxy = proxy("");
        final Pair pair = openBoth(proxy);
        exchange(pair.plain);
        exchange(pair.inspected);
        pair.inspected.send("this is forbidden");
        pair.plain.session.close(1000, "bye", Callback.NOOP);
        assertThat(pair.plain.awaitClose()).isTrue();
        assertThat(pair.inspected.awaitClose()).isTrue();
        // Closed on the proxy's side too (its registry is empty) before the log is read.
        await().atMost(Duration.ofSeconds(10))
                .until(() -> proxy.server().connections().size() == 0);

        final List<Map<String, Object>> lines = proxy.auditLines();
        assertThat(lines).extracting(l -> l.get("reason")).containsExactly("pattern_denied");
        assertThat(connectionLines(lines)).isEmpty();
    }

    // ---- fixtures -------------------------------------------------------------------------------

    /** One connection on each relay path. */
    private record Pair(TestClient.Recorder plain, TestClient.Recorder inspected) {}

    /** Messages and bytes expected each way: in is client to upstream. */
    private record Counts(long messagesIn, long bytesIn, long messagesOut, long bytesOut) {
        Counts plusIn(String message) {
            return new Counts(messagesIn + 1, bytesIn + message.length(), messagesOut, bytesOut);
        }
    }

    private Pair openBoth(RunningProxy proxy) throws Exception {
        return new Pair(
                connectPlain(proxy, "/plain"),
                client.connect(proxy.uri("/inspected"), Map.of("Origin", ORIGIN), List.of()));
    }

    private static TestClient.Recorder connectPlain(RunningProxy proxy, String path) throws Exception {
        return client.connect(
                proxy.uri(path),
                Map.of(
                        "Authorization",
                        "Bearer " + token("alice"),
                        "X-Forwarded-For",
                        FORWARDED_CLIENT,
                        "Origin",
                        ORIGIN),
                List.of());
    }

    /**
     * Three messages the upstream echoes and one it answers with other text: four each way, with
     * different byte counts in and out (all ASCII, so characters are bytes).
     */
    private static Counts exchange(TestClient.Recorder ws) throws Exception {
        long bytes = 0;
        for (String message : ECHOED) {
            ws.send(message);
            assertThat(ws.next()).isEqualTo(message);
            bytes += message.length();
        }
        ws.send(PUSH);
        assertThat(ws.next()).isEqualTo(PUSHED);
        return new Counts(4, bytes + PUSH.length(), 4, bytes + PUSHED.length());
    }

    private RunningProxy proxy(String auditOptions) throws Exception {
        final String routes = """
                - name: plain
                  match: { path: /plain }
                  upstream: { targets: [%1$s] }
                  origin: { allow: ["%4$s"] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%3$s" }
                  messages: { maxSize: 1KiB }
                - name: inspected
                  match: { path: /inspected }
                  upstream: { targets: [%2$s] }
                  origin: { allow: ["%4$s"] }
                  auth: none
                  messages: { deny: [ { name: forbidden, pattern: forbidden } ] }
                - name: plain-idle
                  match: { path: /plain-idle }
                  upstream: { targets: [%1$s] }
                  origin: { allow: ["%4$s"] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%3$s" }
                  limits: { idleTimeout: 1s }
                - name: inspected-idle
                  match: { path: /inspected-idle }
                  upstream: { targets: [%2$s] }
                  origin: { allow: ["%4$s"] }
                  auth: none
                  limits: { idleTimeout: 1s }
                  messages: { deny: [ { name: forbidden, pattern: forbidden } ] }
                """.formatted(upstream.uri("/plain"), upstream.uri("/inspected"), SECRET, ORIGIN);
        final PolicyText policy = PolicyText.in(dir).routes(routes).extra("""
                        admin: { host: 127.0.0.1, port: 0 }
                        proxy: { trustedProxies: [127.0.0.1/32], drainTimeout: 10s }
                        """);
        if (!auditOptions.isEmpty()) {
            policy.auditOptions(auditOptions);
        }
        return closeAfter.add(RunningProxy.start(policy));
    }

    /**
     * Waits until the log has {@code expected} connection lines, then checks a moment later that no
     * more came: exactly one per connection.
     */
    private static List<Map<String, Object>> awaitConnectionLines(RunningProxy proxy, int expected) throws Exception {
        await().atMost(Duration.ofSeconds(15))
                .until(() -> connectionLines(proxy.auditLines()).size() >= expected);
        Thread.sleep(300);
        final List<Map<String, Object>> lines = connectionLines(proxy.auditLines());
        assertThat(lines).hasSize(expected);
        return lines;
    }

    private static List<Map<String, Object>> connectionLines(List<Map<String, Object>> lines) {
        return lines.stream().filter(l -> "connection".equals(l.get("event"))).toList();
    }

    private static Map<String, Object> line(List<Map<String, Object>> lines, String route) {
        final List<Map<String, Object>> matching =
                lines.stream().filter(l -> route.equals(l.get("route"))).toList();
        assertThat(matching).as("connection lines of route " + route).hasSize(1);
        return matching.get(0);
    }

    private static void assertLine(
            Map<String, Object> line, Counts counts, String closedBy, String reason, int code, String phrase) {
        assertThat(line)
                .containsEntry("event", "connection")
                .containsEntry("stage", "session")
                .containsEntry("reason", reason)
                .containsEntry("closedBy", closedBy)
                .containsEntry("closeCode", code)
                .containsEntry("closeReason", phrase)
                .containsEntry("count", 1)
                .containsEntry("messagesIn", (int) counts.messagesIn())
                .containsEntry("bytesIn", (int) counts.bytesIn())
                .containsEntry("messagesOut", (int) counts.messagesOut())
                .containsEntry("bytesOut", (int) counts.bytesOut());
        assertThat((String) line.get("conn")).isNotEmpty();
        final Instant opened = Instant.parse((String) line.get("opened"));
        final Instant closed = Instant.parse((String) line.get("ts"));
        assertThat(opened).isBeforeOrEqualTo(closed);
        assertThat(((Number) line.get("durationMs")).longValue())
                .isBetween(0L, Duration.between(opened, closed).toMillis() + 1);
    }

    private static String token(String sub) throws Exception {
        final Instant now = Instant.now();
        final JWTClaimsSet claims = new JWTClaimsSet.Builder()
                .subject(sub)
                .issueTime(Date.from(now))
                .expirationTime(Date.from(now.plus(Duration.ofMinutes(10))))
                .build();
        final SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).build(), claims);
        jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
        return jwt.serialize();
    }
}
