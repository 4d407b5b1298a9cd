package io.wsguard.message;

import static io.wsguard.message.Rules.inspect;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.MessagePolicy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code messages.deny}: RE2 rules over the raw text and every decoded JSON string; the detail names the rule. */
class DenyRulesTest {

    @TempDir
    Path dir;

    static final ContentRules XSS = Rules.deny(
            "script-tag", "(?i)<script",
            "js-url", "(?i)javascript:",
            "event-handler", "(?i)\\bon[a-z]+\\s*=");

    @Test
    void findsARuleAnywhereAndNamesItNeverThePayload() {
        assertThat(XSS.active()).isTrue();
        assertThat(inspect(XSS, "hello <SCRIPT>alert('SECRET')</script>"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
        assertThat(inspect(XSS, "<a href=\"JavaScript:SECRET\">"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule js-url matched"));
        assertThat(inspect(XSS, "<img src=x onerror = SECRET>"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule event-handler matched"));
        assertThat(inspect(XSS, "a conversation on elections, don't = worry")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(XSS, "")).isEqualTo(Verdict.ALLOW);
    }

    @Test
    void theFirstRuleInPolicyOrderIsReported() {
        assertThat(inspect(XSS, "onload=1 javascript: <script"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
        // Also when the earlier rule only shows in a decoded string and the later one in the raw text.
        assertThat(inspect(XSS, "[\"\\u003cscript\", \"javascript:\"]"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
    }

    @Test
    void jsonEscapesCannotHideAMatch() {
        final ContentRules json = ContentRules.compile(Rules.messages(
                Rules.jsonPolicy(Rules.write(dir, "any.json", "{}"), true),
                Optional.empty(),
                Rules.denyRules("script-tag", "(?i)<script")));
        for (String evasion : List.of(
                "{\"text\":\"\\u003cscript>alert(1)\"}",
                "{\"text\":\"\\u003Cscr\\u0069pt>\"}",
                "{\"text\":\"<\\/script\", \"x\": \"\\u003cSCRIPT\"}",
                "{\"\\u003cscript\":1}",
                "[[[\"a\", {\"b\": \"\\u003cscript\"}]]]")) {
            assertThat(inspect(json, evasion))
                    .as(evasion)
                    .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
        }
        assertThat(inspect(json, "{\"text\":\"\\u003cb>bold\\u003c/b>\"}")).isEqualTo(Verdict.ALLOW);
        // Without a json section too, when the message looks like JSON.
        assertThat(inspect(Rules.deny("script-tag", "(?i)<script"), "{\"text\":\"\\u003cscript>\"}"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
    }

    @Test
    void escapesCannotHideAMatchWhereTheStrictParseFails() {
        // JSON not required (or no json section): a lax upstream parser (JSON.parse keeps the last of
        // duplicate keys, Jackson 2 and Go's Decoder ignore trailing content) still decodes these.
        final ContentRules optional = ContentRules.compile(Rules.messages(
                Rules.jsonPolicy(Rules.write(dir, "any.json", "{}"), false),
                Optional.empty(),
                Rules.denyRules("script-tag", "(?i)<script")));
        for (ContentRules rules : List.of(optional, Rules.deny("script-tag", "(?i)<script"))) {
            for (String evasion : List.of(
                    "{\"m\":\"\",\"m\":\"\\u003cscript>alert(1)\\u003c/script>\"}",
                    "\"\\u003cscript>alert(1)\"",
                    "{\"t\":\"\\u003cscript>\"} x",
                    "{\"t\":\"\\u003cscript>\"}{}",
                    "/* c */ {\"t\":\"\\u003Cscr\\u0069pt>\"}",
                    "plain text \\u003cscript>")) {
                // Where JSON is configured, what does not parse may be refused as invalid_json first; either way never
                // allowed.
                final Verdict verdict = inspect(rules, evasion);
                if (rules == optional) {
                    assertThat(verdict).as(evasion).isInstanceOf(Verdict.Deny.class);
                } else {
                    assertThat(verdict)
                            .as(evasion)
                            .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
                }
            }
        }
        assertThat(inspect(Rules.deny("script-tag", "(?i)<script"), "{\"t\":\"\\u003cb>bold\\u003c/b>\"} x"))
                .isEqualTo(Verdict.ALLOW);
    }

    @Test
    void decodingTheEscapesOfAnyText() {
        final byte[] text =
                "a\\u003cb \\ud83d\\ude00 \\ud800x \\n\\\" \\uZZZZ \\q end\\".getBytes(StandardCharsets.UTF_8);
        assertThat(JsonEscapes.decode(text, 0, text.length))
                .isEqualTo("a<b \uD83D\uDE00 \uFFFDx \n\" \\uZZZZ \\q end\\");
    }

    @Test
    void anchoredRulesAlsoApplyToEachDecodedString() {
        final ContentRules anchored = ContentRules.compile(Rules.messages(
                Rules.jsonPolicy(Rules.write(dir, "any.json", "{}"), true),
                Optional.empty(),
                Rules.denyRules("starts-js", "(?i)^\\s*javascript:")));
        assertThat(inspect(anchored, "{\"url\":\"javascript:alert(1)\"}"))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule starts-js matched"));
        assertThat(inspect(anchored, "{\"url\":\"see javascript:\"}")).isEqualTo(Verdict.ALLOW);
    }

    @Test
    void anchorsAfterMultiByteCharsAreRightUnlikeRe2jByteMode() {
        // RE2/J 1.8 matching UTF-8 bytes finds "^$" at the end of "é" (the context of the last position
        // is misread); the rules match decoded text, where it is right.
        final ContentRules anchored = Rules.deny("empty", "x|^$");
        assertThat(inspect(anchored, "\u00e9")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(anchored, "a\u212a")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(anchored, "")).isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule empty matched"));
    }

    @Test
    void classicRedosPairsFinishFast() {
        final ContentRules redos = Rules.deny("nested", "(a+)+$", "overlap", "(x+x+)+y");
        final String as = "a".repeat(50_000) + "!";
        final String xs = "x".repeat(50_000);
        assertThat(assertTimeoutPreemptively(Duration.ofSeconds(1), () -> inspect(redos, as)))
                .isEqualTo(Verdict.ALLOW);
        assertThat(assertTimeoutPreemptively(Duration.ofSeconds(1), () -> inspect(redos, xs)))
                .isEqualTo(Verdict.ALLOW);
        assertThat(inspect(redos, "aaaa")).isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule nested matched"));
        assertThat(inspect(redos, "xxxy")).isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule overlap matched"));
    }

    @Test
    void readsOnlyItsSliceOfTheBuffer() {
        final byte[] buf = "<script>hello world<script>".getBytes(StandardCharsets.UTF_8);
        assertThat(XSS.inspectText(buf, 8, 11)).isEqualTo(Verdict.ALLOW);
        assertThat(XSS.inspectText(buf, 8, 19))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
        assertThat(XSS.inspectText(buf, 0, 0)).isEqualTo(Verdict.ALLOW);
    }

    @Test
    void patternsThatAreNotRe2FailAtCompileNamingTheRule() {
        assertThatThrownBy(() -> Rules.deny("ok", "x", "look", "a(?=b)"))
                .isInstanceOf(ContentRulesException.class)
                .hasFieldOrPropertyWithValue("field", "messages.deny[1].pattern")
                .hasMessageContaining("lookaround and backreferences are not supported");
        assertThatThrownBy(() -> ContentRules.compile(Rules.messages(
                        Optional.empty(),
                        Optional.empty(),
                        List.of(new MessagePolicy.DenyRulePolicy("bad", "(<script")))))
                .hasMessage("not an RE2 regular expression: missing closing ) "
                        + "in `(<script` (expected: an RE2 regular expression)");
    }
}
