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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The content rules (docs/policy.md, {@code messages.json}, {@code deny}, {@code sanitize}) through a running
 * proxy: what the client sees, what the upstream received (never the refused message, the
 * sanitized one instead of the original), the audit line and the metric.
 */
@Timeout(120)
class MessageContentTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        Files.writeString(dir.resolve("chat.json"), """
                {
                  "$schema": "https://json-schema.org/draft/2020-12/schema",
                  "type": "object",
                  "properties": {
                    "type": { "const": "chat" },
                    "text": { "type": "string", "maxLength": 500 },
                    "n": { "type": "integer" }
                  },
                  "required": ["type", "text"],
                  "additionalProperties": false
                }
                """);
        // Open to other properties, as many chat schemas are: what the schema and sanitizer pass is up to the parse.
        Files.writeString(dir.resolve("open.json"), """
                {
                  "type": "object",
                  "properties": { "type": { "const": "chat" }, "text": { "type": "string" } },
                  "required": ["type", "text"]
                }
                """);
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(
                PolicyText.in(dir).routes("""
                - name: json
                  match: { path: /json }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { json: { required: true, schema: chat.json } }
                - name: json-drop
                  match: { path: /json-drop }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { json: { required: true, schema: chat.json }, onViolation: drop }
                - name: deny
                  match: { path: /deny }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages:
                    json: { required: false, schema: chat.json }
                    deny:
                      - { name: script-tag, pattern: "(?i)<\\\\s*script" }
                      - { name: redos, pattern: "(a+)+$" }
                - name: sanitize
                  match: { path: /sanitize }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { json: { required: true, schema: chat.json }, sanitize: { html: strip, fields: \
                ["$.text"] } }
                - name: open
                  match: { path: /open }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { json: { required: true, schema: open.json }, sanitize: { html: strip, fields: \
                ["$.text"] } }
                - name: fields-only
                  match: { path: /fields-only }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { sanitize: { html: strip, fields: ["$.text"] } }
                - name: sanitize-text
                  match: { path: /sanitize-text }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { sanitize: { html: formatting } }
                - name: sanitize-both
                  match: { path: /sanitize-both }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { direction: both, sanitize: { html: strip } }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { json: { required: true, schema: chat.json }, sanitize: { html: strip, fields: \
                ["$.text"] } }
                """.formatted(upstream.uri("/echo"))).auditOptions("sampleBytes: 12"));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void validMessagesPassByteExact() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        // Formatting, key order, escapes and number spelling are the client's: nothing is re-serialized.
        final String exact = "{ \"text\" : \"caf\\u00e9 \\\"quoted\\\" \\\\ \", \"type\":\"chat\",\"n\":1}";
        ws.send(exact);
        assertThat(ws.next()).isEqualTo(exact);
        assertThat(upstream.messages()).contains(exact);
        ws.session.close();
    }

    @Test
    void notJsonClosesWith1008InvalidJson() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("not-json-marker {");
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, "not-json-marker {");
        final Map<String, Object> line = audited("json", "invalid_json");
        assertThat(line).containsEntry("action", "close").containsEntry("closeCode", 1008);
        assertThat((String) line.get("detail")).startsWith("not JSON").doesNotContain("marker");
    }

    @Test
    void schemaViolationNamesThePathNeverTheValue() throws Exception {
        // The events of one client on one route for one reason share a line, whose detail is the first
        // event's: end the windows open, so that this violation's detail is the one on its line.
        proxy.auditLines();
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final String bad = "{\"type\":\"chat\",\"text\":\"ok\",\"n\":\"secret-marker-42\"}";
        ws.send(bad);
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, bad);
        final Map<String, Object> line = audited("json", "schema_violation");
        assertThat((String) line.get("detail")).contains("$.n").doesNotContain("secret-marker-42");
        assertThat(blocked("json", "schema_violation")).isGreaterThanOrEqualTo(1);
    }

    @Test
    void jsonNestedTenThousandDeepIsRefusedQuickly() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        ws.send("[".repeat(10_000) + "]".repeat(10_000));
        assertClosed(ws, 1008);
        assertThat((String) audited("json", "invalid_json").get("detail")).isNotBlank();
    }

    @Test
    void fiftyMegabyteStringIsCutAtMaxSize() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        ws.send("{\"type\":\"chat\",\"text\":\"" + "s".repeat(50_000_000) + "\"}");
        assertClosed(ws, 1009);
    }

    @Test
    void dropDiscardsTheViolatingMessageAndKeepsTheConnection() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/json-drop"));
        ws.send("{\"type\":\"other\",\"text\":\"drop-marker\"}");
        final String next = "{\"type\":\"chat\",\"text\":\"after the drop\"}";
        ws.send(next);
        assertThat(ws.next()).isEqualTo(next);
        assertThat(upstream.messages()).noneMatch(m -> m.toString().contains("drop-marker"));
        assertThat(audited("json-drop", "schema_violation"))
                .containsEntry("action", "drop")
                .containsEntry("closeCode", null);
        ws.session.close();
    }

    @Test
    void denyRuleClosesAndNamesTheRuleNotThePayload() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("hello < SCRIPT >alert(1)");
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, "hello < SCRIPT >alert(1)");
        assertThat(audited("deny", "pattern_denied")).containsEntry("detail", "rule script-tag matched");
    }

    @Test
    void sampleBytesKeepsTheStartOfARefusedPayloadAndNoMore() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        ws.send("sample-head <script>and the rest that is never logged");
        assertClosed(ws, 1008);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", "deny")
                        .containsEntry("reason", "pattern_denied")
                        .containsEntry("sample", "sample-head ")));
        assertThat(Files.readString(dir.resolve("audit.jsonl"))).doesNotContain("never logged");
    }

    @Test
    void denyRuleSeesThroughJsonEscapes() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final String escaped = "{\"type\":\"chat\",\"text\":\"\\u003cscript>alert(1)\"}";
        ws.send(escaped);
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, escaped);
    }

    @Test
    void redosInputAgainstACatastrophicPatternIsDecidedInLinearTime() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final String evil = "a".repeat(30_000) + "!";
        final long started = System.nanoTime();
        ws.send(evil);
        ws.send("after the redos input");
        assertThat(ws.next()).isEqualTo(evil);
        assertThat(ws.next()).isEqualTo("after the redos input");
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(5));
        ws.send("a".repeat(30_000));
        assertClosed(ws, 1008);
        assertThat(audited("deny", "pattern_denied")).isNotNull();
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "<img src=x onerror=alert(1)>",
                "<IMG SRC=JaVaScRiPt:alert('XSS')>",
                "<a href=\\\"javascript:alert(1)\\\">x</a>",
                "<svg onload=alert(1)>",
                "<svg/onload=alert(1)>",
                "<scr<script>ipt>alert(1)</script>",
                "<iframe src=\\\"javascript:alert(1)\\\"></iframe>",
                "<body onload=alert(1)>",
                "<a href=\\\"&#106;avascript:alert(1)\\\">x</a>",
                "<div style=\\\"background:url(javascript:alert(1))\\\">x</div>",
                "<math><mi xlink:href=\\\"javascript:alert(1)\\\">x</mi></math>",
                "<IMG\\u0000 SRC=x ONERROR=alert(1)>"
            })
    void xssInAJsonFieldReachesTheUpstreamHarmless(String payload) throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize"));
        ws.send("{\"type\":\"chat\",\"text\":\"hi " + payload + "\"}");
        final String relayed = (String) ws.next();
        assertThat(relayed).as(payload).isNotNull();
        final String lower = relayed.toLowerCase(java.util.Locale.ROOT);
        assertThat(lower)
                .as(payload)
                .doesNotContain(
                        "<img",
                        "<svg",
                        "<script",
                        "<iframe",
                        "<body",
                        "<a ",
                        "<div",
                        "<math",
                        "onerror",
                        "onload",
                        "javascript:");
        assertThat(upstream.messages()).contains(relayed);
        assertThat(ws.session.isOpen()).isTrue();
        ws.session.close();
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", "sanitize")
                        .containsEntry("event", "modified")
                        .containsEntry("reason", "sanitized")
                        .containsEntry("action", "modify")));
    }

    @Test
    void sanitizingRewritesOnlyWhatChangedAndCountsIt() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize"));
        final String clean = "{\"type\":\"chat\",\"text\":\"plain words, nothing to do\"}";
        ws.send(clean);
        assertThat(ws.next()).isEqualTo(clean);
        ws.send("{\"type\":\"chat\",\"text\":\"<b>bold</b> and <img src=x onerror=alert(1)>\"}");
        assertThat(ws.next()).isEqualTo("{\"type\":\"chat\",\"text\":\"bold and \"}");
        final var counter = proxy.server()
                .metrics()
                .registry()
                .find("wsguard.modified")
                .tag("route", "sanitize")
                .counter();
        assertThat(counter).isNotNull();
        assertThat(counter.count()).isGreaterThanOrEqualTo(1);
        ws.session.close();
    }

    /**
     * A Go upstream (encoding/json matches keys case-insensitively, the last one wins) would take
     * {@code Text} for the text the sanitizer checked, or {@code Type} for the type the schema did.
     */
    @ParameterizedTest
    @ValueSource(
            strings = {
                "{\"type\":\"chat\",\"text\":\"hi\",\"Text\":\"<script>alert('case-marker-1')</script>\"}",
                "{\"type\":\"chat\",\"Type\":\"admin\",\"text\":\"case-marker-2\"}"
            })
    void keysDifferingOnlyInCaseCloseWith1008InvalidJson(String message) throws Exception {
        final double before = blocked("open", "invalid_json");
        final TestClient.Recorder ws = client.connect(proxy.uri("/open"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send(message);
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, message);
        assertThat(upstream.messages()).noneMatch(m -> m.toString().contains("case-marker"));
        final Map<String, Object> line = audited("open", "invalid_json");
        assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("action", "close")
                .containsEntry("closeCode", 1008)
                .containsEntry("detail", "$: duplicate key differing only in case");
        assertThat(blocked("open", "invalid_json")).isEqualTo(before + 1);
    }

    @Test
    void aSanitizedRewriteKeepsEveryOtherByteNumbersIncluded() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/open"));
        // Doubles would turn these into 0.1, Infinity (or an error) and 1.5; a re-serializer would also respace.
        final String numbers = "\"n\": 0.1000000000000000055511151231257827, \"big\":1e400 ,\"price\":1.50,"
                + "\"exp\":-2.50E-3,\"zero\":-0.0,\"int\":123456789012345678901234567890";
        final String sent = "{ \"type\" : \"chat\",\n  \"text\": \"<b>bold</b> move\", " + numbers + " }";
        ws.send(sent);
        final String expected = "{ \"type\" : \"chat\",\n  \"text\": \"bold move\", " + numbers + " }";
        assertThat(ws.next()).isEqualTo(expected);
        assertThat(upstream.messages()).contains(expected);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", "open")
                        .containsEntry("event", "modified")
                        .containsEntry("detail", "sanitized $.text")));
        ws.session.close();
    }

    /**
     * {@code sanitize.fields} without a {@code json} section: the fields are JSON paths, so JSON
     * messages have just those strings sanitized (a whole-message pass would turn the quotes into
     * entities and break the JSON), and text that is not JSON is still sanitized whole.
     */
    @Test
    void sanitizeFieldsWithoutAJsonSectionSanitizeThoseFieldsOfJsonMessages() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/fields-only"));
        ws.send("{\"type\":\"chat\",\"text\":\"<b>hi</b><img src=x onerror=alert(1)>\",\"note\":\"<i>kept</i>\"}");
        final String expected = "{\"type\":\"chat\",\"text\":\"hi\",\"note\":\"<i>kept</i>\"}";
        assertThat(ws.next()).isEqualTo(expected);
        assertThat(upstream.messages()).contains(expected);
        ws.send("plain <svg onload=alert(1)>text");
        assertThat(ws.next()).isEqualTo("plain text");
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", "fields-only")
                        .containsEntry("event", "modified")
                        .containsEntry("detail", "sanitized $.text")));
        ws.session.close();
    }

    /** Messages over 8 KiB are checked on a pool thread instead of the selector: the same verdicts. */
    @Test
    void largeMessagesGetTheSameVerdictsWholeOrFragmented() throws Exception {
        final String filler = "lorem ipsum ".repeat(2000);
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize-text"));
        ws.send(filler + "<img src=x onerror=alert(1)>");
        assertThat(ws.next()).isEqualTo(filler);
        ws.send(filler + "<b>kept</b>");
        assertThat(ws.next()).isEqualTo(filler + "<b>kept</b>");
        // The same in three fragments: reassembled, sanitized, relayed as one message.
        final String whole = filler + "<svg onload=alert(1)>x";
        final int third = whole.length() / 3;
        ws.session.sendPartialText(whole.substring(0, third), false, org.eclipse.jetty.websocket.api.Callback.NOOP);
        ws.session.sendPartialText(
                whole.substring(third, 2 * third), false, org.eclipse.jetty.websocket.api.Callback.NOOP);
        ws.session.sendPartialText(whole.substring(2 * third), true, org.eclipse.jetty.websocket.api.Callback.NOOP);
        assertThat(ws.next()).isEqualTo(filler + "x");
        ws.session.close();

        final TestClient.Recorder refused = client.connect(proxy.uri("/json"));
        final UpstreamServer.Endpoint refusedLeg = upstream.newest();
        final String big = "{\"type\":\"chat\",\"text\":\"ok\",\"n\":\"" + filler + "\"}";
        refused.send(big);
        assertClosed(refused, 1008);
        assertUpstreamNeverGot(refusedLeg, big);
    }

    @Test
    void jsonSentAsBinaryIsCheckedLikeText() throws Exception {
        // Upstreams often parse binary frames too (JSON.parse(buffer)): sending a message as binary must
        // not skip the schema. /deny has an optional-JSON schema requiring type chat.
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final byte[] admin = "{\"type\":\"admin\",\"text\":\"binary-bypass\"}".getBytes(StandardCharsets.UTF_8);
        ws.session.sendBinary(ByteBuffer.wrap(admin), Callback.NOOP);
        assertClosed(ws, 1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).noneMatch(m -> m instanceof byte[] bytes && Arrays.equals(bytes, admin));
        assertThat(audited("deny", "schema_violation")).containsEntry("closeCode", 1008);
    }

    @Test
    void binaryThatIsNotUtf8IsRefusedWith1003WhereJsonRulesApply() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/deny"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final byte[] opaque = {'{', '"', 't', 'y', 'p', 'e', '"', ':', (byte) 0xff, '}'};
        ws.session.sendBinary(ByteBuffer.wrap(opaque), Callback.NOOP);
        assertClosed(ws, 1003);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).noneMatch(m -> m instanceof byte[] bytes && Arrays.equals(bytes, opaque));
        assertThat(audited("deny", "binary_denied"))
                .containsEntry("closeCode", 1003)
                .containsEntry("detail", "binary message that is not UTF-8 where JSON or sanitize rules apply");
    }

    @Test
    void aSanitizedRewriteThatWouldOutgrowMaxSizeClosesWith1009() throws Exception {
        // '&' becomes "&amp;": 60,000 of them would go upstream as 300,000 bytes against a 64 KiB maxSize.
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize-text"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final String ampersands = "&".repeat(60_000);
        ws.send(ampersands);
        assertClosed(ws, 1009);
        assertUpstreamNeverGot(leg, ampersands);
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String text && text.startsWith("&amp;"));
        assertThat(audited("sanitize-text", "message_too_big"))
                .containsEntry("detail", "sanitized, the message would exceed maxSize of 65536 bytes");
    }

    @Test
    void utf16IsNotTakenForJson() throws Exception {
        // UTF-16LE of a valid chat message is valid UTF-8 text too (ASCII and NULs); Jackson would read it as UTF-16.
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final String nuls = new String(
                "{\"type\":\"chat\",\"text\":\"x\"}".getBytes(StandardCharsets.UTF_16LE), StandardCharsets.UTF_8);
        ws.send(nuls);
        assertClosed(ws, 1008);
        assertUpstreamNeverGot(leg, nuls);
        assertThat(audited("json", "invalid_json"))
                .containsEntry("detail", "not JSON: not UTF-8 (a NUL byte among the first four)");
    }

    @Test
    void markupSentAsBinaryIsSanitizedAndStaysBinary() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize-text"));
        ws.session.sendBinary(
                ByteBuffer.wrap("<i>ok</i><script>alert(1)</script>".getBytes(StandardCharsets.UTF_8)), Callback.NOOP);
        final Object relayed = ws.next();
        assertThat(relayed).isInstanceOf(byte[].class);
        assertThat(new String((byte[]) relayed, StandardCharsets.UTF_8))
                .contains("<i>ok</i>")
                .doesNotContain("<script");
        ws.session.close();
    }

    @Test
    void nonJsonTextIsSanitizedWhole() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize-text"));
        ws.send("<i>fine</i><script>alert(1)</script><a href=\"javascript:x()\">link</a>");
        final String relayed = (String) ws.next();
        assertThat(relayed).contains("<i>fine</i>").doesNotContain("<script", "javascript:");
        ws.session.close();
    }

    @Test
    void directionBothSanitizesWhatTheUpstreamSends() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/sanitize-both"));
        final String html = "stored <img src=x onerror=alert(1)>xss";
        ws.send("push-text:"
                + Base64.getUrlEncoder().withoutPadding().encodeToString(html.getBytes(StandardCharsets.UTF_8)));
        assertThat(ws.next()).isEqualTo("stored xss");
        ws.session.close();
    }

    @Test
    void monitorModeRelaysUnchangedAndAuditsWhatWouldHaveHappened() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/watch"));
        final String violating = "{\"type\":\"other\",\"text\":\"x\"}";
        ws.send(violating);
        assertThat(ws.next()).isEqualTo(violating);
        final String html = "{\"type\":\"chat\",\"text\":\"<img src=x onerror=alert(1)>\"}";
        ws.send(html);
        assertThat(ws.next()).isEqualTo(html);
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(proxy.auditLines())
                .filteredOn(line -> "watch".equals(line.get("route")))
                .extracting(line -> line.get("reason"))
                .contains("schema_violation", "sanitized"));
        assertThat(proxy.auditLines())
                .filteredOn(line -> "watch".equals(line.get("route")))
                .allSatisfy(line -> assertThat(line).containsEntry("event", "monitored"));
        ws.session.close();
    }

    /**
     * Random messages of the schema pass byte-exact; random mutations of them are either relayed or
     * refused with 1008/1007, never crash the proxy or leak into another connection.
     */
    @Test
    void randomValidMessagesPassAndRandomMutationsNeverBreakTheProxy() throws Exception {
        final Random random = new Random(4);
        final TestClient.Recorder ws = client.connect(proxy.uri("/json"));
        for (int i = 0; i < 300; i++) {
            final String message = randomChat(random);
            ws.send(message);
            assertThat(ws.next()).as(message).isEqualTo(message);
        }
        ws.session.close();
        final List<Integer> codes = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            final byte[] mutated = mutate(randomChat(random).getBytes(StandardCharsets.UTF_8), random);
            final TestClient.Recorder victim = client.connect(proxy.uri("/json"));
            final TestClient.Recorder bystander = client.connect(proxy.uri("/json"));
            victim.session.sendText(
                    new String(mutated, StandardCharsets.UTF_8), org.eclipse.jetty.websocket.api.Callback.NOOP);
            Object reply = null;
            for (int wait = 0; wait < 100 && reply == null && victim.closed.getCount() > 0; wait++) {
                reply = victim.messages.poll(20, TimeUnit.MILLISECONDS);
            }
            if (reply == null) {
                assertThat(victim.awaitClose()).isTrue();
                codes.add(victim.closeCode);
            } else {
                victim.session.close();
            }
            // The proxy still serves, and nothing of the victim's reached the bystander.
            final String probe = "{\"type\":\"chat\",\"text\":\"probe " + i + "\"}";
            bystander.send(probe);
            assertThat(bystander.next()).isEqualTo(probe);
            assertThat(bystander.messages).isEmpty();
            bystander.session.close();
        }
        assertThat(codes).isNotEmpty().allSatisfy(code -> assertThat(code).isIn(1008, 1007));
    }

    // ---------------------------------------------------------------- helpers

    private static String randomChat(Random random) {
        final StringBuilder text = new StringBuilder();
        final String alphabet = "abcdefghijklmnopqrstuvwxyz ABC0123456789.,!?-_:;'()[]{}/@#%*+=~^|é€✓😀日本";
        final int length = random.nextInt(120);
        for (int i = 0; i < length; i++) {
            final int pick = random.nextInt(alphabet.length());
            final char c = alphabet.charAt(pick);
            if (Character.isHighSurrogate(c)) {
                text.append(c).append(alphabet.charAt(pick + 1));
            } else if (!Character.isLowSurrogate(c)) {
                text.append(c);
            }
        }
        final String escapedText = text.toString().replace("\\", "\\\\").replace("\"", "\\\"");
        final StringBuilder json = new StringBuilder("{");
        final boolean withNumber = random.nextBoolean();
        final String spacing = random.nextBoolean() ? " " : "";
        json.append("\"type\":")
                .append(spacing)
                .append("\"chat\",")
                .append(spacing)
                .append("\"text\":\"")
                .append(escapedText)
                .append('"');
        if (withNumber) {
            json.append(",\"n\":").append(random.nextInt());
        }
        return json.append('}').toString();
    }

    private static byte[] mutate(byte[] message, Random random) {
        final byte[] copy = message.clone();
        switch (random.nextInt(3)) {
            case 0 -> copy[random.nextInt(copy.length)] = (byte) random.nextInt(128);
            case 1 -> {
                return java.util.Arrays.copyOf(copy, random.nextInt(copy.length));
            }
            default -> {
                final int at = random.nextInt(copy.length);
                final byte[] grown = new byte[copy.length + 1];
                System.arraycopy(copy, 0, grown, 0, at);
                grown[at] = (byte) "{[\",:}]\\x".charAt(random.nextInt(9));
                System.arraycopy(copy, at, grown, at + 1, copy.length - at);
                return grown;
            }
        }
        return copy;
    }

    private static void assertClosed(TestClient.Recorder ws, int code) throws InterruptedException {
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(code);
    }

    /** {@code leg} ended (the sentinel: its frames are read in order, the close last) without carrying {@code text}. */
    private static void assertUpstreamNeverGot(UpstreamServer.Endpoint leg, String text) throws InterruptedException {
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).doesNotContain(text);
    }

    private static Map<String, Object> audited(String route, String reason) {
        final List<Map<String, Object>> found = new ArrayList<>();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            found.clear();
            proxy.auditLines().stream()
                    .filter(line -> route.equals(line.get("route")) && reason.equals(line.get("reason")))
                    .forEach(found::add);
            return !found.isEmpty();
        });
        assertThat(found.get(found.size() - 1)).containsEntry("stage", "message");
        assertThat(blocked(route, reason))
                .as("wsguard_blocked_total{route=%s,reason=%s}", route, reason)
                .isGreaterThanOrEqualTo(1);
        return found.get(found.size() - 1);
    }

    private static double blocked(String route, String reason) {
        final var counter = proxy.server()
                .metrics()
                .registry()
                .find("wsguard.blocked")
                .tag("route", route)
                .tag("reason", reason)
                .counter();
        return counter == null ? 0 : counter.count();
    }
}
