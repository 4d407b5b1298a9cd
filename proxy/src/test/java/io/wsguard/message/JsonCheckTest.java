package io.wsguard.message;

import static io.wsguard.message.Rules.inspect;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.MessagePolicy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code messages.json}: one JSON document within limits, or a refusal whose detail never quotes the message. */
class JsonCheckTest {

    @TempDir
    static Path dir;

    static ContentRules required;
    static ContentRules optional;

    @BeforeAll
    static void compile() {
        final Path schema = Rules.write(dir, "chat.json", Rules.CHAT_SCHEMA);
        required = Rules.json(schema, true);
        optional = Rules.json(schema, false);
    }

    @Test
    void validMessagePassesUnchanged() {
        assertThat(required.active()).isTrue();
        assertThat(inspect(required, "{\"type\":\"chat\",\"text\":\"hello\",\"room\":\"lobby\"}"))
                .isEqualTo(Verdict.ALLOW);
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
            delimiter = '|',
            quoteCharacter = '`',
            value = {
                "SECRET not json                       | not JSON: unrecognized token at 1:1",
                "{\"type\":\"chat\",\"text\":SECRET}    | not JSON: unrecognized token at 1:23",
                "{\"type\":\"chat\" \"text\":\"SECRET\"} | not JSON: unexpected character at 1:16",
                "{\"type\":\"chat\",\"text\":\"SECRET\"   | not JSON: unexpected end of input",
                "{\"type\":\"chat\",\"text\":\"SECRET\"} x | not JSON: trailing content after the document at 1:33",
                "{\"type\":\"chat\",\"text\":\"SECRET\"}{} | not JSON: trailing content after the document at 1:32",
                "{\"type\":\"chat\",\"text\":\"x\",\"text\":\"SECRET\"} | not JSON: duplicate key at 1:27",
                "{\"type\":\"chat\",\"text\":\"a\\qSECRET\"} | not JSON: invalid escape at 1:26",
                "{\"type\":\"chat\",\"text\":'SECRET'}    | not JSON: unexpected character at 1:23",
                "{\"type\":\"chat\",\"text\":\"x\",\"n\":01} | not JSON: invalid number at 1:32",
                "{\"type\":\"chat\",\"text\":\"x\",\"n\":NaN} | not JSON: invalid number at 1:34",
                "{\"type\":\"chat\",\"text\":\"x\"} // SECRET | not JSON: trailing content after the document at 1:28",
                "`   `                                  | not JSON: empty message",
            })
    void nonJsonIsRefusedWithTheParsersReasonOnly(String message, String detail) {
        final Verdict verdict = inspect(required, message);
        assertThat(verdict).isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, detail));
        assertThat(Rules.detail(verdict)).doesNotContain("SECRET", "chat", "text");
    }

    @Test
    void nestingTenThousandDeepIsRefusedFast() {
        final String deep = "[".repeat(10_000) + "]".repeat(10_000);
        final Verdict verdict = assertTimeoutPreemptively(Duration.ofMillis(500), () -> inspect(required, deep));
        assertThat(verdict).isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: nesting deeper than 64"));
        // Where JSON is optional too: a document refused for a limit is not "text".
        assertThat(inspect(optional, "{\"a\":".repeat(10_000) + "1" + "}".repeat(10_000)))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: nesting deeper than 64"));
    }

    @Test
    void sixtyFourLevelsAreStillJson() {
        final ContentRules noSchema = ContentRules.compile(Rules.messages(
                Optional.of(new MessagePolicy.JsonPolicy(
                        true, Optional.of(Rules.write(dir, "any.json", "{}")), Optional.empty(), java.util.Map.of())),
                Optional.empty(),
                List.of()));
        assertThat(inspect(noSchema, "[".repeat(64) + "]".repeat(64))).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(noSchema, "[".repeat(65) + "]".repeat(65)))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: nesting deeper than 64"));
    }

    @Test
    void fiftyMegabyteStringIsRefusedFast() {
        final byte[] huge = new byte[50 * 1024 * 1024];
        Arrays.fill(huge, (byte) 'a');
        huge[0] = '"';
        huge[huge.length - 1] = '"';
        // Through the front door: longer than maxSize, refused before parsing.
        final Verdict verdict =
                assertTimeoutPreemptively(Duration.ofMillis(500), () -> required.inspectText(huge, 0, huge.length));
        assertThat(verdict).isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: longer than 65536 bytes"));
        // And the parser's own limits, without that check: refused up front, the 50 MB are not read.
        final JsonScan scan = assertTimeoutPreemptively(
                Duration.ofMillis(500),
                () -> JsonScan.run(required.parserFactory(), huge, 0, huge.length, Rules.MAX_SIZE, true, null, null));
        assertThat(scan.failure()).isEqualTo("not JSON: longer than 65536 bytes");
        assertThat(scan.limitExceeded()).isTrue();
    }

    @Test
    void hugeNumbersAreRefused() {
        assertThat(inspect(required, "{\"type\":\"chat\",\"text\":\"x\",\"n\":" + "9".repeat(101) + "}"))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: a number longer than 100 characters"));
        // Exponents stay doubles in the tree, so schema arithmetic cannot be made expensive.
        assertThat(inspect(required, "{\"type\":\"chat\",\"text\":\"x\",\"n\":1e999999999}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.n: expected integer"));
    }

    @Test
    void optionalJsonLetsTextThroughButValidatesJson() {
        assertThat(optional.active()).isTrue();
        assertThat(inspect(optional, "just text, not JSON")).isEqualTo(Verdict.ALLOW);
        // Text that starts like JSON and does not parse is ambiguous where a schema applies: a lax upstream
        // parser reads the document and ignores the rest, so it is refused rather than let past the schema.
        assertThat(inspect(optional, "{\"type\":\"chat\",\"text\":\"x\"} trailing"))
                .isEqualTo(
                        new Verdict.Deny(Reason.INVALID_JSON, "not JSON: trailing content after the document at 1:28"));
        assertThat(inspect(optional, "{\"type\":\"chat\",\"text\":5}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.text: expected string"));
        // Duplicate keys make a document ambiguous: refused even where JSON is optional.
        assertThat(inspect(optional, "{\"type\":\"chat\",\"text\":\"x\",\"type\":\"admin\"}"))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: duplicate key at 1:27"));
        assertThat(inspect(optional, "{\"type\":\"chat\",\"text\":\"x\",\"Type\":\"admin\"}"))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "$: duplicate key differing only in case"));
    }

    /**
     * Go's encoding/json matches keys case-insensitively and keeps the last: the schema and the
     * sanitizer would check {@code text} while the upstream acts on {@code Text}.
     */
    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
            delimiter = '|',
            quoteCharacter = '`',
            value = {
                "{\"type\":\"chat\",\"text\":\"hi\",\"Text\":\"SECRET\"} "
                        + "             | $: duplicate key differing only in case",
                "{\"type\":\"chat\",\"Type\":\"SECRET\",\"text\":\"x\"} "
                        + "              | $: duplicate key differing only in case",
                "{\"TYPE\":\"SECRET\",\"type\":\"chat\",\"text\":\"x\"} "
                        + "              | $: duplicate key differing only in case",
                "{\"type\":\"chat\",\"text\":\"x\",\"room\":{\"id\":1,\"iD\":\"SECRET\"}} "
                        + "| $.room: duplicate key differing only in case",
                "[{\"a\":1},{\"b\":1,\"B\":\"SECRET\"}]                    "
                        + "             | $[1]: duplicate key differing only in case",
                "{\"a\":1,\"n\":{\"b\":1},\"A\":\"SECRET\"}               "
                        + "               | $: duplicate key differing only in case",
                "{\"odd key\":{\"x\":1,\"X\":\"SECRET\"}}                   "
                        + "            | $['…']: duplicate key differing only in case",
                "{\"\u212Aey\":\"SECRET\",\"key\":1}                       "
                        + "                | $: duplicate key differing only in case",
                "{\"\u017Fize\":\"SECRET\",\"SIZE\":1}                     "
                        + "                | $: duplicate key differing only in case",
                "{\"\u00C9t\u00E9\":\"SECRET\",\"\u00E9T\u00C9\":1}         "
                        + "                  | $: duplicate key differing only in case",
            })
    void keysDifferingOnlyInCaseAreRefusedNamingTheObjectNeverTheValue(String message, String detail) {
        for (ContentRules rules : List.of(required, optional)) {
            final Verdict verdict = inspect(rules, message);
            assertThat(verdict).isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, detail));
            assertThat(Rules.detail(verdict)).doesNotContain("SECRET", "Text", "Type", "TYPE");
        }
    }

    @Test
    void keysThatOnlyLookAlikeAndKeysOfOtherObjectsDoNotClash() {
        final ContentRules anyDocument = anyDocument();
        // ß folds to itself, never to SS (simple case folding, as Go's encoding/json); other objects' keys are theirs.
        for (String message : List.of(
                "{\"text\":1,\"texts\":2,\"tex\":3}",
                "{\"stra\u00DFe\":1,\"STRASSE\":2}",
                "{\"a\":{\"x\":1},\"b\":{\"X\":2},\"x\":{\"X\":3}}",
                "[{\"id\":1},{\"ID\":2}]")) {
            assertThat(inspect(anyDocument, message)).as(message).isEqualTo(Verdict.ALLOW);
        }
    }

    /** JSON required, any document: what the parse alone refuses. */
    private static ContentRules anyDocument() {
        return ContentRules.compile(Rules.messages(
                Optional.of(new MessagePolicy.JsonPolicy(
                        true,
                        Optional.of(Rules.write(dir, "anything.json", "{}")),
                        Optional.empty(),
                        java.util.Map.of())),
                Optional.empty(),
                List.of()));
    }

    @Test
    void largeObjectsAreCheckedInLinearTimeAcrossNestedOnes() {
        final ContentRules anyDocument = anyDocument();
        final StringBuilder keys = new StringBuilder("{");
        for (int i = 0; i < 3_000; i++) {
            keys.append("\"key")
                    .append(i)
                    .append("\":")
                    .append(i % 7 == 0 ? "{\"inner\":1,\"Other\":2}" : "1")
                    .append(',');
        }
        final String head = keys.toString();
        assertThat(inspect(anyDocument, head + "\"last\":1}")).isEqualTo(Verdict.ALLOW);
        final Verdict caseOnly =
                assertTimeoutPreemptively(Duration.ofMillis(500), () -> inspect(anyDocument, head + "\"KEY17\":1}"));
        assertThat(caseOnly)
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "$: duplicate key differing only in case"));
        assertThat(inspect(anyDocument, head + "\"key2999\":1}"))
                .isInstanceOf(Verdict.Deny.class)
                .extracting(verdict -> ((Verdict.Deny) verdict).detail())
                .asString()
                .startsWith("not JSON: duplicate key at 1:");
        // An object nested after the outer one went past pairwise comparison is checked on its own.
        assertThat(inspect(anyDocument, head + "\"n\":{\"a\":1,\"A\":2}}"))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "$.n: duplicate key differing only in case"));
    }

    @Test
    void binaryMessagesCannotSkipTheContentRules() {
        final byte[] chat = "{\"type\":\"chat\",\"text\":\"hi\"}".getBytes(StandardCharsets.UTF_8);
        final byte[] admin = "{\"type\":\"admin\",\"text\":\"hi\"}".getBytes(StandardCharsets.UTF_8);
        final byte[] notUtf8 = {'{', '"', 'x', '"', ':', (byte) 0xff, '}'};
        assertThat(required.inspectBinary(chat, 0, chat.length, true))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "binary message where JSON is required"));
        // Where JSON is optional, UTF-8 sent as binary is checked as text: an upstream parsing the frame acts on it.
        assertThat(optional.inspectBinary(chat, 0, chat.length, true)).isEqualTo(Verdict.ALLOW);
        assertThat(optional.inspectBinary(admin, 0, admin.length, true))
                .isInstanceOf(Verdict.Deny.class)
                .extracting(v -> ((Verdict.Deny) v).reason())
                .isEqualTo(Reason.SCHEMA_VIOLATION);
        assertThat(optional.inspectBinary(notUtf8, 0, notUtf8.length, false))
                .isEqualTo(new Verdict.Deny(
                        Reason.BINARY_DENIED, "binary message that is not UTF-8 where JSON or sanitize rules apply"));
        // Deny rules alone match any binary byte for byte.
        final byte[] script = {(byte) 0xff, '<', 's', 'c', 'r', 'i', 'p', 't', '>'};
        assertThat(Rules.deny("script-tag", "(?i)<script").inspectBinary(script, 0, script.length, false))
                .isEqualTo(new Verdict.Deny(Reason.PATTERN_DENIED, "rule script-tag matched"));
        assertThat(Rules.deny("script-tag", "(?i)<script").inspectBinary(notUtf8, 0, notUtf8.length, false))
                .isEqualTo(Verdict.ALLOW);
    }

    @Test
    void readsOnlyItsSliceOfTheBuffer() {
        final String message = "{\"type\":\"chat\",\"text\":\"hi\"}";
        final byte[] buf = ("garbage" + message + "more garbage").getBytes(StandardCharsets.UTF_8);
        final byte[] before = buf.clone();
        assertThat(required.inspectText(buf, 7, message.length())).isEqualTo(Verdict.ALLOW);
        assertThat(required.inspectText(buf, 7, message.length() - 1))
                .isEqualTo(new Verdict.Deny(Reason.INVALID_JSON, "not JSON: unexpected end of input"));
        assertThat(buf).isEqualTo(before);
    }

    @Test
    void noRulesMeansInactive() {
        final ContentRules none = ContentRules.compile(
                Rules.messages(Optional.empty(), Rules.sanitize(MessagePolicy.Html.NONE), List.of()));
        assertThat(none.active()).isFalse();
        assertThat(inspect(none, "<script>")).isEqualTo(Verdict.ALLOW);
        assertThat(none.inspectBinary(new byte[] {(byte) 0xff}, 0, 1, false)).isEqualTo(Verdict.ALLOW);
    }

    @Test
    void utf16IsNotTakenForJson() {
        // UTF-16LE of a valid chat message: valid UTF-8 too (ASCII and NULs), and Jackson would decode it
        // as UTF-16 and pass it, while the upstream reads UTF-8 full of NULs.
        final byte[] utf16 = "{\"type\":\"chat\",\"text\":\"x\"}".getBytes(StandardCharsets.UTF_16LE);
        final Verdict expected =
                new Verdict.Deny(Reason.INVALID_JSON, "not JSON: not UTF-8 (a NUL byte among the first four)");
        assertThat(required.inspectText(utf16, 0, utf16.length)).isEqualTo(expected);
        assertThat(optional.inspectText(utf16, 0, utf16.length)).isEqualTo(expected);
    }
}
