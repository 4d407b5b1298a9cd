package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the upstream receives is what the rules judged, through a running proxy. The sanitizer
 * decodes character references (<code>un&amp;#105;on</code> comes out as {@code union}), so its rewrite goes
 * through the schema and the deny rules again; the controls and bidi overrides it decodes are
 * removed; and text that cannot hold markup is not handed to it at all, so it passes byte for byte
 * and writes no audit line. Each hop is checked: the client's close code, what the upstream
 * received, the audit line.
 */
@Timeout(60)
class SanitizedRewriteTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        Files.writeString(dir.resolve("chat.json"), """
                {
                  "type": "object",
                  "properties": {
                    "type": { "const": "chat" },
                    "text": { "type": "string", "maxLength": 40 },
                    "name": { "type": "string", "pattern": "^[^:]*$" }
                  },
                  "required": ["type", "text"],
                  "additionalProperties": false
                }
                """);
        final String rules = """
                deny:
                      - { name: sqli, pattern: "(?i)union\\\\s+select" }
                      - { name: js-url, pattern: "(?i)javascript:" }""";
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: chat
                  match: { path: /chat }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    json: { required: true, schema: chat.json }
                    sanitize: { html: strip, fields: ["$.text", "$.name"] }
                    %2$s
                - name: chat-drop
                  match: { path: /chat-drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    json: { required: true, schema: chat.json }
                    sanitize: { html: strip, fields: ["$.text", "$.name"] }
                    onViolation: drop
                    %2$s
                - name: chat-watch
                  match: { path: /chat-watch }
                  mode: monitor
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    json: { required: true, schema: chat.json }
                    sanitize: { html: strip, fields: ["$.text", "$.name"] }
                    %2$s
                - name: text
                  match: { path: /text }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    sanitize: { html: formatting }
                    %2$s
                - name: both
                  match: { path: /both }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    direction: both
                    sanitize: { html: strip }
                    %2$s
                - name: plain-json
                  match: { path: /plain-json }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { json: { required: true, schema: chat.json }, sanitize: { html: strip, fields: \
                ["$.text"] } }
                - name: plain-text
                  match: { path: /plain-text }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { sanitize: { html: formatting } }
                """.formatted(upstream.uri("/echo"), rules)));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void aDenyRuleThatMatchesOnlyOnceTheSanitizerDecodedAReferenceClosesWith1008() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("{\"type\":\"chat\",\"text\":\"un&#105;on select password from users\"}");
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, "password from users");
        assertThat(audited("chat", "pattern_denied", "sanitized, rule sqli matched"))
                .containsEntry("event", "blocked")
                .containsEntry("action", "close")
                .containsEntry("closeCode", 1008);
    }

    /** A whole text message, and the same sent as binary (upstreams parse binary frames as text too). */
    @Test
    void aJavascriptUrlSpelledWithAReferenceIsRefusedAsTextAndAsBinary() throws Exception {
        final TestClient.Recorder text = client.connect(proxy.uri("/text"));
        final UpstreamServer.Endpoint textLeg = upstream.newest();
        text.send("<i>see</i> jav&#x61;script:alert('ref-text')");
        assertClosed(text, 1008);
        final TestClient.Recorder binary = client.connect(proxy.uri("/text"));
        final UpstreamServer.Endpoint binaryLeg = upstream.newest();
        binary.session.sendBinary(
                ByteBuffer.wrap("<b>x</b> jav&#x61;script:alert('ref-binary')".getBytes(StandardCharsets.UTF_8)),
                Callback.NOOP);
        assertClosed(binary, 1008);
        assertThat(textLeg.awaitEnd()).isTrue();
        assertUpstreamNeverGot(binaryLeg, "script:alert");
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(count("text", "pattern_denied", "sanitized, rule js-url matched"))
                        .isEqualTo(2));
    }

    @Test
    void aStringThatTheRewriteGrowsPastMaxLengthIsRefusedAsASchemaViolation() throws Exception {
        // 36 characters: within maxLength 40. Sanitized, each '&' is "&amp;": 52.
        final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("{\"type\":\"chat\",\"text\":\"Tom & Jerry & Spike & Tyke & Nibbles\"}");
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, "Nibbles");
        assertThat(audited("chat", "schema_violation", "sanitized, $.text: longer than 40 characters"))
                .containsEntry("event", "blocked")
                .containsEntry("closeCode", 1008);
    }

    @Test
    void aStringThatTheRewriteMakesBreakItsPatternIsRefusedAsASchemaViolation() throws Exception {
        // The name may hold no ':'; the client spells one as &#58;.
        final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("{\"type\":\"chat\",\"text\":\"hi\",\"name\":\"alice&#58;admin-pattern\"}");
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, "admin-pattern");
        assertThat(audited("chat", "schema_violation", "sanitized, $.name: does not match ^[^:]*$"))
                .containsEntry("event", "blocked")
                .containsEntry("closeCode", 1008);
    }

    @Test
    void controlAndBidiCharactersTheSanitizerDecodesNeverReachTheUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/chat"));
        ws.send("{\"type\":\"chat\",\"text\":\"ctl-1 a&#x202e;b&#x85;c&#x7f;d&#9;e\"}");
        // The tab stays (quoted as JSON); the override, NEL and DEL are gone.
        final String expected = "{\"type\":\"chat\",\"text\":\"ctl-1 abcd\\te\"}";
        assertThat(ws.next()).isEqualTo(expected);
        assertThat(upstream.messages()).contains(expected);
        final TestClient.Recorder text = client.connect(proxy.uri("/text"));
        // Whole text: the override, CSI (C1), an isolate and CR are gone.
        text.send("ctl-2 <b>x&#x202e;y</b>&#x9b;z&#x2066;w&#13;v");
        assertThat(text.next()).isEqualTo("ctl-2 <b>xy</b>zwv");
        assertThat(upstream.messages())
                .contains("ctl-2 <b>xy</b>zwv")
                .noneMatch(m -> m instanceof String s
                        && s.startsWith("ctl-")
                        && s.chars()
                                .anyMatch(c -> c == 0x202e
                                        || c == 0x85
                                        || c == 0x7f
                                        || c == 0x9b
                                        || c == 0x2066
                                        || c == '\r'));
        assertThat(audited("chat", "sanitized", "sanitized $.text")).containsEntry("event", "modified");
        assertThat(audited("text", "sanitized", "sanitized the message as HTML"))
                .containsEntry("event", "modified");
        ws.session.close();
        text.session.close();
    }

    /**
     * {@code a = b} used to reach the upstream as <code>a &amp;#61; b</code>, audited as modified. Only the
     * sentinel, which holds markup, is changed and audited.
     */
    @Test
    void textThatCannotHoldMarkupPassesByteForByteAndWritesNoAuditLine() throws Exception {
        final String jsonPlain = "{\"type\":\"chat\",\"text\":\"a = b + \\\"q\\\" 'x' @me `t` > 1\"}";
        final String textPlain = "a = b + \"q\" 'x' @me `t` > 1 caf\u00e9 {x}";
        final TestClient.Recorder json = client.connect(proxy.uri("/plain-json"));
        final TestClient.Recorder text = client.connect(proxy.uri("/plain-text"));
        json.send(jsonPlain);
        text.send(textPlain);
        assertThat(json.next()).isEqualTo(jsonPlain);
        assertThat(text.next()).isEqualTo(textPlain);
        // Binary checked as text: the same.
        final byte[] bytes = textPlain.getBytes(StandardCharsets.UTF_8);
        text.session.sendBinary(ByteBuffer.wrap(bytes), Callback.NOOP);
        assertThat((byte[]) text.next()).isEqualTo(bytes);
        assertThat(upstream.messages())
                .contains(jsonPlain, textPlain)
                .anyMatch(m -> m instanceof byte[] b && java.util.Arrays.equals(b, bytes));
        json.send("{\"type\":\"chat\",\"text\":\"<b>sentinel</b>\"}");
        assertThat(json.next()).isEqualTo("{\"type\":\"chat\",\"text\":\"sentinel\"}");
        text.send("<script>x</script>sentinel");
        assertThat(text.next()).isEqualTo("sentinel");
        for (String route : List.of("plain-json", "plain-text")) {
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(linesOf(route)).hasSize(1));
            assertThat(linesOf(route).get(0)).containsEntry("event", "modified").containsEntry("count", 1);
            final var modified = proxy.server()
                    .metrics()
                    .registry()
                    .find("wsguard.modified")
                    .tag("route", route)
                    .counter();
            assertThat(modified.count()).as(route).isEqualTo(1.0);
        }
        json.session.close();
        text.session.close();
    }

    @Test
    void anUpstreamMessageThatADenyRuleCatchesAfterSanitizingClosesTheUpstreamWith1008AndTheClientWith1014()
            throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/both"));
        upstream.closes().clear();
        final String pushed = "un&#105;on select secrets from vault";
        ws.send("push-text:"
                + Base64.getUrlEncoder().withoutPadding().encodeToString(pushed.getBytes(StandardCharsets.UTF_8)));
        assertClosed(ws, 1014);
        assertThat(ws.messages).isEmpty();
        assertThat(upstream.closes().poll(5, TimeUnit.SECONDS)).startsWith("1008");
        assertThat(audited("both", "pattern_denied", "sanitized, rule sqli matched"))
                .containsEntry("event", "blocked")
                .containsEntry("action", "close")
                .containsEntry("closeCode", 1014);
    }

    @Test
    void onViolationDropDropsTheMessageAndKeepsTheConnection() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/chat-drop"));
        ws.send("{\"type\":\"chat\",\"text\":\"un&#105;on select drop-marker\"}");
        final String next = "{\"type\":\"chat\",\"text\":\"after the drop\"}";
        ws.send(next);
        assertThat(ws.next()).isEqualTo(next);
        // The echo of the next message is the sentinel: the upstream read it after the dropped one.
        assertNoUpstreamMessageHolds("drop-marker");
        assertThat(audited("chat-drop", "pattern_denied", "sanitized, rule sqli matched"))
                .containsEntry("event", "blocked")
                .containsEntry("action", "drop")
                .containsEntry("closeCode", null);
        ws.session.close();
    }

    /** Monitor mode relays the original, which the rules had passed, and audits what enforcing would have refused. */
    @Test
    void monitorModeRelaysTheOriginalAndAuditsTheRefusalTheRewriteWouldHaveMet() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/chat-watch"));
        final String sent = "{\"type\":\"chat\",\"text\":\"un&#105;on select watch-marker\"}";
        ws.send(sent);
        assertThat(ws.next()).isEqualTo(sent);
        assertThat(upstream.messages()).contains(sent);
        assertThat(audited("chat-watch", "pattern_denied", "sanitized, rule sqli matched"))
                .containsEntry("event", "monitored")
                .containsEntry("action", "none");
        ws.session.close();
    }

    // ---------------------------------------------------------------- helpers

    private static void assertClosed(TestClient.Recorder ws, int code) throws InterruptedException {
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(code);
    }

    /**
     * {@code leg} ended (the sentinel: its frames are read in order, the close last) without carrying {@code marker}.
     */
    private static void assertUpstreamNeverGot(UpstreamServer.Endpoint leg, String marker) throws InterruptedException {
        assertThat(leg.awaitEnd()).isTrue();
        assertNoUpstreamMessageHolds(marker);
    }

    /** Neither the message nor its decoded form: nothing holding {@code marker}, text or binary. */
    private static void assertNoUpstreamMessageHolds(String marker) {
        assertThat(upstream.messages())
                .noneMatch(m ->
                        (m instanceof String s ? s : new String((byte[]) m, StandardCharsets.UTF_8)).contains(marker));
    }

    private static Map<String, Object> audited(String route, String reason, String detail) {
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(count(route, reason, detail)).isPositive());
        try {
            return proxy.auditLines().stream()
                    .filter(line -> route.equals(line.get("route"))
                            && reason.equals(line.get("reason"))
                            && detail.equals(line.get("detail")))
                    .reduce((a, b) -> b)
                    .orElseThrow();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static long count(String route, String reason, String detail) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> route.equals(line.get("route"))
                        && reason.equals(line.get("reason"))
                        && detail.equals(line.get("detail")))
                .peek(line -> assertThat(line).containsEntry("stage", "message"))
                .mapToLong(line -> ((Number) line.get("count")).longValue())
                .sum();
    }

    private static List<Map<String, Object>> linesOf(String route) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> route.equals(line.get("route")))
                .toList();
    }
}
