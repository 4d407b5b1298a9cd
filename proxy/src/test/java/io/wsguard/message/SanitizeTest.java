package io.wsguard.message;

import static io.wsguard.message.Rules.inspect;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.MessagePolicy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code messages.sanitize}: the OWASP sanitizer on selected JSON strings or whole text messages, byte-exact when
 * nothing changes.
 */
class SanitizeTest {

    /** What {@code Sanitizers.FORMATTING} lets through (allowCommonInlineFormattingElements), with no attributes. */
    static final Set<String> FORMATTING_ELEMENTS = Set.of(
            "b", "i", "font", "s", "u", "o", "sup", "sub", "ins", "del", "strong", "strike", "tt", "code", "big",
            "small", "br", "span", "em");

    static final JsonMapper MAPPER = JsonMapper.builder().build();

    @TempDir
    static Path dir;

    static Path anySchema;

    @BeforeAll
    static void schema() {
        anySchema = Rules.write(dir, "any.json", "{}");
    }

    static ContentRules textRoute(MessagePolicy.Html html) {
        return ContentRules.compile(Rules.messages(Optional.empty(), Rules.sanitize(html), List.of()));
    }

    static ContentRules jsonRoute(MessagePolicy.Html html, String... fields) {
        return ContentRules.compile(
                Rules.messages(Rules.jsonPolicy(anySchema, true), Rules.sanitize(html, fields), List.of()));
    }

    /**
     * Text with no {@code <}, no {@code &} and no <code>{{</code> cannot hold markup: it passes byte for
     * byte, as a whole message and as a JSON field, though the sanitizer would encode {@code =},
     * quotes, {@code +}, {@code @} and the backtick. (Until this rule, {@code a = b} reached the
     * upstream as <code>a &amp;#61; b</code> and was audited as modified.)
     */
    @Test
    void textThatCannotHoldMarkupPassesByteForByte() throws Exception {
        final String alphabet =
                "abzAZ09 .,:;?!()[]}-_=+\"'`@#$%^*/\\|~>\t\n\r\u0001\u007f\u0085\u202e\u00e9\u4e2d\u2028";
        final SplittableRandom random = new SplittableRandom(7);
        for (MessagePolicy.Html html : List.of(MessagePolicy.Html.STRIP, MessagePolicy.Html.FORMATTING)) {
            final ContentRules text = textRoute(html);
            final ContentRules json = jsonRoute(html, "$.text");
            assertThat(inspect(text, "a = b")).isEqualTo(Verdict.ALLOW);
            assertThat(inspect(json, "{\"text\":\"a = b\"}")).isEqualTo(Verdict.ALLOW);
            for (int n = 0; n < 5_000; n++) {
                final StringBuilder s = new StringBuilder();
                for (int i = random.nextInt(40); i > 0; i--) {
                    s.append(alphabet.charAt(random.nextInt(alphabet.length())));
                }
                final String plain = s.toString();
                assertThat(inspect(text, plain)).as("%s: %s", html, plain).isEqualTo(Verdict.ALLOW);
                assertThat(inspect(json, "{\"text\":" + MAPPER.writeValueAsString(plain) + "}"))
                        .as("%s: %s", html, plain)
                        .isEqualTo(Verdict.ALLOW);
            }
            // One '<' or '&' and the sanitizer runs, and its output goes upstream whole.
            assertThat(inspect(text, "a = b & c"))
                    .isEqualTo(new Verdict.Rewrite(
                            "a &#61; b &amp; c", Reason.SANITIZED, "sanitized the message as HTML"));
            // The sanitizer's guard against template injection (AngularJS) is kept.
            assertThat(inspect(text, "{{x}}"))
                    .isEqualTo(new Verdict.Rewrite("{<!-- -->{x}}", Reason.SANITIZED, "sanitized the message as HTML"));
            assertThat(inspect(json, "{\"text\":\"ends with {\"}")).isInstanceOf(Verdict.Rewrite.class);
        }
    }

    /**
     * Character references decode to controls and bidi overrides; what the sanitizer returns has them
     * removed (tab and newline stay), here and in text it rewrote for other reasons.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("unwantedReferences")
    void controlAndBidiCharactersTheSanitizerProducesAreRemoved(String reference) {
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "a" + reference + "b"))
                .isEqualTo(new Verdict.Rewrite("ab", Reason.SANITIZED, "sanitized the message as HTML"));
        assertThat(inspect(jsonRoute(MessagePolicy.Html.FORMATTING, "$.text"), "{\"text\":\"a" + reference + "b\"}"))
                .isEqualTo(new Verdict.Rewrite("{\"text\":\"ab\"}", Reason.SANITIZED, "sanitized $.text"));
    }

    static Stream<String> unwantedReferences() {
        return Stream.of(
                "&#x202e;",
                "&#x202a;",
                "&#x2066;",
                "&#x2069;",
                "&#x85;",
                "&#x9f;",
                "&#x80;",
                "&#x7f;",
                "&#13;",
                "&#x1b;",
                "&#1;");
    }

    @Test
    void tabAndNewlineFromReferencesStayAndRawControlsGoWhereverTheSanitizerRuns() {
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "a&#9;b&#10;c"))
                .isEqualTo(new Verdict.Rewrite("a\tb\nc", Reason.SANITIZED, "sanitized the message as HTML"));
        assertThat(inspect(textRoute(MessagePolicy.Html.FORMATTING), "<b>x\u202e\r\u0085</b>\n"))
                .isEqualTo(new Verdict.Rewrite("<b>x</b>\n", Reason.SANITIZED, "sanitized the message as HTML"));
    }

    /** The sanitizer decodes character references: its output is judged again, deny rules and schema. */
    @Test
    void theRewriteIsJudgedAgainByTheDenyRulesAndTheSchema() {
        final Path schema = Rules.write(dir, "short.json", """
                {"type":"object","properties":{"text":{"type":"string","maxLength":20},"name":{"type":"string",\
                "pattern":"^[^:]*$"}}}""");
        final ContentRules rules = ContentRules.compile(Rules.messages(
                Rules.jsonPolicy(schema, true),
                Rules.sanitize(MessagePolicy.Html.STRIP),
                Rules.denyRules("sqli", "(?i)union\\s+select", "js-url", "(?i)javascript:")));
        assertThat(inspect(rules, "{\"text\":\"un&#105;on select\"}"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "sanitized, rule sqli matched"));
        assertThat(inspect(rules, "{\"text\":\"jav&#x61;script:x\"}"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "sanitized, rule js-url matched"));
        // 19 characters pass maxLength 20; "Tom &amp; Jerry &amp; Spike" does not.
        assertThat(inspect(rules, "{\"text\":\"Tom & Jerry & Spike\"}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "sanitized, $.text: longer than 20 characters"));
        assertThat(inspect(rules, "{\"name\":\"alice&#58;admin\"}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "sanitized, $.name: does not match ^[^:]*$"));
        // A rewrite that breaks nothing goes on.
        assertThat(inspect(rules, "{\"text\":\"<b>hi</b> &#105;\"}"))
                .isEqualTo(new Verdict.Rewrite("{\"text\":\"hi i\"}", Reason.SANITIZED, "sanitized $.text"));
        // Whole text too, where the decoded form would be JSON-escaped for an upstream that decodes it.
        final ContentRules text = ContentRules.compile(Rules.messages(
                Optional.empty(),
                Rules.sanitize(MessagePolicy.Html.STRIP),
                Rules.denyRules("js-url", "(?i)javascript:")));
        assertThat(inspect(text, "<i>jav&#x61;script&#58;alert(1)</i>"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "sanitized, rule js-url matched"));
    }

    /** Entries from OWASP's XSS filter evasion cheat sheet, and variants. */
    static Stream<String> attacks() {
        return Stream.of(
                "<script>alert(1)</script>",
                "<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT>",
                "<img src=x onerror=alert(1)>",
                "<IMG SRC=JaVaScRiPt:alert('XSS')>",
                "<IMG SRC=javascript:alert(&quot;XSS&quot;)>",
                "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
                "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>",
                "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;"
                        + "&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
                "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A"
                        + "&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
                "<IMG SRC=\"jav\tascript:alert('XSS');\">",
                "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
                "<IMG SRC=\"java\u0000script:alert('XSS');\">",
                "<a href=\"javascript:alert(1)\">x</a>",
                "<a href=\"&#106;avascript:alert(1)\">x</a>",
                "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
                "<b onmouseover=alert(1)>bold</b>",
                "<i style=\"background:url(javascript:alert(1))\">it</i>",
                "<svg onload=alert(1)>",
                "<svg/onload=alert(1)>",
                "<scr<script>ipt>alert(1)</scr</script>ipt>",
                "&#60;script&#62;alert(1)&#60;/script&#62;",
                "<iframe src=\"javascript:alert(1)\"></iframe>",
                "<iframe src=http://evil.example/></iframe>",
                "<body onload=alert(1)>",
                "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
                "<div style=\"background:url(javascript:alert(1))\">x</div>",
                "<div style=\"width: expression(alert('XSS'));\">",
                "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
                "<object data=\"javascript:alert(1)\"></object>",
                "<embed src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
                "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
                "<link rel=stylesheet href=\"javascript:alert(1)\">",
                "<table background=\"javascript:alert(1)\">",
                "<input type=\"image\" src=\"javascript:alert(1)\">",
                "<form action=\"javascript:alert(1)\"><button>x</button></form>",
                "<<SCRIPT>alert(\"XSS\");//<</SCRIPT>",
                "<!--<script>alert(1)</script>-->",
                "<![CDATA[<script>alert(1)</script>]]>",
                "<? echo '<script>' ?>",
                "<style>body{background:url(\"javascript:alert(1)\")}</style>",
                "<a href=\"jAvAsCrIpT&colon;alert(1)\">x</a>",
                "<img src=\"x\" ONERROR=\"alert(1)\"/>",
                "<details open ontoggle=alert(1)>",
                "<span style=color:red onclick=alert(1)>x</span>",
                "<font color=red face=\"x\" onmouseover=alert(1)>x</font>");
    }

    static Stream<Arguments> attacksInBothModes() {
        return attacks()
                .flatMap(a -> Stream.of(
                        Arguments.of(MessagePolicy.Html.STRIP, a), Arguments.of(MessagePolicy.Html.FORMATTING, a)));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("attacksInBothModes")
    void attackComesOutInertAsTextAndAsAJsonField(MessagePolicy.Html html, String attack) throws Exception {
        final Set<String> allowed = html == MessagePolicy.Html.STRIP ? Set.of() : FORMATTING_ELEMENTS;

        final Verdict asText = inspect(textRoute(html), attack);
        final String text = asText instanceof Verdict.Rewrite rewrite ? rewrite.text() : attack;
        assertInert(text, allowed);
        assertThat(asText).isInstanceOf(Verdict.Rewrite.class);
        assertThat(Rules.detail(asText)).isEqualTo("sanitized the message as HTML");

        final String message = "{\"type\":\"chat\",\"text\":" + MAPPER.writeValueAsString(attack) + "}";
        final Verdict asJson = inspect(jsonRoute(html, "$.text"), message);
        assertThat(asJson).isInstanceOf(Verdict.Rewrite.class);
        final JsonNode rewritten = MAPPER.readTree(((Verdict.Rewrite) asJson).text());
        assertInert(rewritten.get("text").stringValue(), allowed);
        assertThat(rewritten.get("type").stringValue()).isEqualTo("chat");
        assertThat(Rules.detail(asJson)).isEqualTo("sanitized $.text");
    }

    /**
     * Every tag left is an allowed element written bare ({@code <b>}, {@code </b>}, {@code <br />}):
     * no other element, no attribute at all (so no on*= handler and no javascript: or data: URL),
     * no comment, CDATA or processing instruction.
     */
    static void assertInert(String html, Set<String> allowed) {
        int i = html.indexOf('<');
        while (i >= 0) {
            final int close = html.indexOf('>', i);
            assertThat(close).as("unclosed tag in %s", html).isPositive();
            final String tag = html.substring(i + 1, close);
            final String name = tag.startsWith("/")
                    ? tag.substring(1)
                    : tag.endsWith(" /") ? tag.substring(0, tag.length() - 2) : tag;
            assertThat(name).as("tag <%s> in %s", tag, html).matches("[a-z]+");
            assertThat(allowed).as("element <%s> in %s", name, html).contains(name);
            i = html.indexOf('<', close);
        }
        assertThat(html.toLowerCase(java.util.Locale.ROOT)).doesNotContain("<script", "<!--", "<![cdata", "<?");
    }

    @Test
    void markupTheFormattingPolicyKeepsPassesUnchanged() {
        final String message = "{\"text\":\"<b>bold</b> and <i>it</i>\",\"n\":1.50}";
        assertThat(inspect(jsonRoute(MessagePolicy.Html.FORMATTING, "$.text"), message))
                .isEqualTo(Verdict.ALLOW);
        assertThat(inspect(jsonRoute(MessagePolicy.Html.STRIP, "$.text"), message))
                .isEqualTo(new Verdict.Rewrite(
                        "{\"text\":\"bold and it\",\"n\":1.50}", Reason.SANITIZED, "sanitized $.text"));
    }

    @Test
    void onlySelectedFieldsChangeAndEverythingElseKeepsItsBytes() {
        final ContentRules rules =
                jsonRoute(MessagePolicy.Html.STRIP, "$.text", "$.user.name", "$.items[*].title", "$['odd key']");
        final String message = """
                { "type" : "chat", "text":"<b>hi</b> & bye", "other":"<b>kept</b>",
                  "user": {"name": "<i>bob</i>", "bio": "<i>kept</i>"}, "n": 1.50e+2,
                  "items": [{"title": "<u>one</u>", "body": "<u>kept</u>"}, {"title": "plain"}, {"title": "<s>3</s>"}],
                  "odd key": "<p>x</p>", "<b>key</b>": "k" }""";
        final Verdict verdict = inspect(rules, message);
        assertThat(verdict)
                .isEqualTo(new Verdict.Rewrite(
                        message.replace("\"<b>hi</b> & bye\"", "\"hi &amp; bye\"")
                                .replace("\"<i>bob</i>\"", "\"bob\"")
                                .replace("\"<u>one</u>\"", "\"one\"")
                                .replace("\"<s>3</s>\"", "\"3\"")
                                .replace("\"<p>x</p>\"", "\"x\""),
                        Reason.SANITIZED,
                        "sanitized $.text, $.user.name, $.items[0].title and 2 more"));
    }

    @Test
    void noFieldsMeansEveryStringValueButNoKey() {
        final Verdict verdict = inspect(
                jsonRoute(MessagePolicy.Html.STRIP), "{\"<b>k</b>\":[\"<b>a</b>\",{\"x\":\"<i>b</i>\"}],\"n\":\"1\"}");
        assertThat(verdict)
                .isEqualTo(new Verdict.Rewrite(
                        "{\"<b>k</b>\":[\"a\",{\"x\":\"b\"}],\"n\":\"1\"}",
                        Reason.SANITIZED,
                        "sanitized $['…'][0], $['…'][1].x"));
    }

    @Test
    void rewrittenValuesAreQuotedAsJson() throws Exception {
        final String message = "{\"text\":\"line1\\n<b>x</b>\\ttab \\\"q\\\" \\u00e9 \\ud83d\\ude00\"}";
        final Verdict verdict = inspect(jsonRoute(MessagePolicy.Html.STRIP, "$.text"), message);
        final String text = ((Verdict.Rewrite) verdict).text();
        assertThat(MAPPER.readTree(text).get("text").stringValue())
                .isEqualTo(SanitizeRules.STRIP.sanitize("line1\n<b>x</b>\ttab \"q\" \u00e9 \ud83d\ude00"));
    }

    @Test
    void textOutsideJsonIsSanitizedWhole() {
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "hello, world: (1 - 1)? yes!"))
                .isEqualTo(Verdict.ALLOW);
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "caf\u00e9")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "Tom & Jerry <3"))
                .isEqualTo(new Verdict.Rewrite(
                        "Tom &amp; Jerry &lt;3", Reason.SANITIZED, "sanitized the message as HTML"));
        // Where JSON is optional, text that is not JSON is sanitized as a whole too.
        final ContentRules optional = ContentRules.compile(Rules.messages(
                Rules.jsonPolicy(anySchema, false), Rules.sanitize(MessagePolicy.Html.STRIP, "$.text"), List.of()));
        assertThat(inspect(optional, "<b>not json</b>"))
                .isEqualTo(new Verdict.Rewrite("not json", Reason.SANITIZED, "sanitized the message as HTML"));
        assertThat(inspect(optional, "{\"text\":\"<b>json</b>\"}"))
                .isEqualTo(new Verdict.Rewrite("{\"text\":\"json\"}", Reason.SANITIZED, "sanitized $.text"));
    }

    @Test
    void readsOnlyItsSliceOfTheBuffer() {
        final String message = "{\"a\":\"<b>x</b>\",\"b\":\"y\"}";
        final byte[] buf = ("[[[" + message + "]]]").getBytes(StandardCharsets.UTF_8);
        assertThat(jsonRoute(MessagePolicy.Html.STRIP).inspectText(buf, 3, message.length()))
                .isEqualTo(new Verdict.Rewrite("{\"a\":\"x\",\"b\":\"y\"}", Reason.SANITIZED, "sanitized $.a"));
    }

    @Test
    void aRewriteAfterAByteOrderMarkReplacesTheRightBytes() {
        // Jackson skips the BOM; the offsets it reports must still count from the start of the slice.
        final String message = "\uFEFF{\"a\":\"<b>x</b>\",\"n\":1.50}";
        final byte[] buf = ("[[[" + message + "]]]").getBytes(StandardCharsets.UTF_8);
        final int length = message.getBytes(StandardCharsets.UTF_8).length;
        assertThat(jsonRoute(MessagePolicy.Html.STRIP).inspectText(buf, 3, length))
                .isEqualTo(new Verdict.Rewrite("\uFEFF{\"a\":\"x\",\"n\":1.50}", Reason.SANITIZED, "sanitized $.a"));
    }

    @Test
    void htmlNoneSanitizesNothing() {
        final ContentRules none = ContentRules.compile(
                Rules.messages(Optional.empty(), Rules.sanitize(MessagePolicy.Html.NONE, "$.x"), List.of()));
        assertThat(none.active()).isFalse();
    }

    @Test
    void fieldPathsAreCheckedWhenCompiled() {
        for (String bad : List.of("text", "$.", "$..a", "$.a[", "$.a[x]", "$['a", "$.a b", "$[1", "$.a]")) {
            assertThatThrownBy(() -> jsonRoute(MessagePolicy.Html.STRIP, "$.ok", bad))
                    .as(bad)
                    .isInstanceOf(ContentRulesException.class)
                    .hasFieldOrPropertyWithValue("field", "messages.sanitize.fields[1]")
                    .hasMessageStartingWith("'" + bad + "' is not a JSON path: ")
                    .hasMessageEndingWith("(" + FieldPath.EXPECTED + ")");
        }
        for (String good :
                List.of("$", "$.a", "$.a.b", "$['a b']", "$[\"a\"]", "$.a[0]", "$.a[*].b", "$.*", "$[*][*]")) {
            assertThat(FieldPath.parse(good).toString()).isEqualTo(good);
        }
    }

    @Test
    void aRewriteThatWouldOutgrowMaxSizeIsRefusedNotSent() {
        // '&' is escaped as "&amp;": 60,000 of them grow a 60 KB message past the 64 KiB maxSize.
        final String message = "{\"text\":\"" + "&".repeat(60_000) + "\"}";
        assertThat(inspect(jsonRoute(MessagePolicy.Html.STRIP, "$.text"), message))
                .isEqualTo(new Verdict.Deny(
                        Reason.MESSAGE_TOO_BIG, "sanitized, the message would exceed maxSize of 65536 bytes"));
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "&".repeat(60_000)))
                .isEqualTo(new Verdict.Deny(
                        Reason.MESSAGE_TOO_BIG, "sanitized, the message would exceed maxSize of 65536 bytes"));
        // Small ones are rewritten as before.
        assertThat(inspect(textRoute(MessagePolicy.Html.STRIP), "a & b")).isInstanceOf(Verdict.Rewrite.class);
    }
}
