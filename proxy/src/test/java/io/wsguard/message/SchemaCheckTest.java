package io.wsguard.message;

import static io.wsguard.message.Rules.inspect;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.sun.net.httpserver.HttpServer;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.MessagePolicy;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code messages.json.schema} and {@code typeField}/{@code schemas}: compiled once, violations named without the
 * value.
 */
@Timeout(30)
class SchemaCheckTest {

    static final String RICH_SCHEMA = """
            {
              "type": "object",
              "required": ["type"],
              "additionalProperties": false,
              "properties": {
                "type": { "const": "chat" },
                "text": { "type": "string", "minLength": 1, "maxLength": 10 },
                "word": { "type": "string", "pattern": "^[a-z]*$" },
                "kind": { "enum": ["a", "b"] },
                "mail": { "type": "string", "format": "email" },
                "when": { "type": "string", "format": "date-time" },
                "n": { "type": ["integer", "null"], "minimum": 3, "maximum": 100, "multipleOf": 3 },
                "tags": { "type": "array", "items": { "type": "string" }, "maxItems": 2, "uniqueItems": true },
                "one": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
                "any": { "anyOf": [{ "type": "string" }, { "type": "integer" }] },
                "no": { "not": { "type": "string" } },
                "meta": { "type": "object", "propertyNames": { "maxLength": 3 }, "additionalProperties": { "type": \
            "integer" } },
                "pair": { "type": "array", "prefixItems": [{ "type": "string" }], "items": false },
                "nope": false
              }
            }
            """;

    @TempDir
    static Path dir;

    static ContentRules rich;

    @BeforeAll
    static void compile() {
        rich = Rules.json(Rules.write(dir, "rich.json", RICH_SCHEMA), true);
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
            delimiter = '|',
            quoteCharacter = '`',
            value = {
                "{\"type\":\"SECRET\"}                            | $.type: expected \"chat\"",
                "{\"type\":\"chat\",\"text\":5}                   | $.text: expected string",
                "{\"type\":\"chat\",\"text\":\"\"}                | $.text: shorter than 1 characters",
                "{\"type\":\"chat\",\"text\":\"SECRETSECRET\"}    | $.text: longer than 10 characters",
                "{\"type\":\"chat\",\"word\":\"SECRET\"}          | $.word: does not match ^[a-z]*$",
                "{\"type\":\"chat\",\"kind\":\"SECRET\"}          | $.kind: not one of a, b",
                "{\"type\":\"chat\",\"n\":1}                      | $.n: less than 3",
                "{\"type\":\"chat\",\"n\":102}                    | $.n: greater than 100",
                "{\"type\":\"chat\",\"n\":4}                      | $.n: not a multiple of 3",
                "{\"type\":\"chat\",\"n\":\"SECRET\"}             | $.n: expected integer or null",
                "{\"type\":\"chat\",\"tags\":[\"a\",\"SECRET\",1]}  | $.tags[2]: expected string",
                "{\"type\":\"chat\",\"tags\":[\"a\",\"b\",\"SECRET\"]} | $.tags: more than 2 items",
                "{\"type\":\"chat\",\"tags\":[\"SECRET\",\"SECRET\"]} | $.tags: items are not unique",
                "{\"type\":\"chat\",\"one\":true}                 | "
                        + "$.one: does not match exactly one of the allowed schemas",
                "{\"type\":\"chat\",\"any\":true}                 | "
                        + "$.any: expected string (no anyOf alternative matched)",
                "{\"type\":\"chat\",\"no\":\"SECRET\"}            | $.no: matches a schema it must not match",
                "{\"type\":\"chat\",\"meta\":{\"SECRET\":1}}      | $.meta: property name not allowed (maxLength)",
                "{\"type\":\"chat\",\"meta\":{\"ab\":\"SECRET\"}} | $.meta.ab: expected integer",
                "{\"type\":\"chat\",\"pair\":[\"a\",\"SECRET\"]}  | $.pair[1]: item not allowed",
                "{\"type\":\"chat\",\"nope\":\"SECRET\"}          | $.nope: not allowed",
                "{\"type\":\"chat\",\"extra\":\"SECRET\"}         | $.extra: property not allowed",
                "{\"type\":\"chat\",\"SECRET \\\" x\":1}          | $['…']: property not allowed",
                "{\"type\":\"chat\",\"SECRET_SECRET_SECRET_SECRET_SECRET\":1} | $['…']: property not allowed",
                "{\"text\":\"SECRET\"}                            | $: required property 'type' missing",
                "[\"SECRET\"]                                     | $: expected object",
                "\"SECRET\"                                       | $: expected object",
            })
    void violationNamesThePathAndTheRuleNeverTheValue(String message, String detail) {
        final Verdict verdict = inspect(rich, message);
        assertThat(verdict).isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, detail));
        assertThat(detail).doesNotContain("SECRET");
    }

    @Test
    void validDocumentsPassIncludingEveryAlternative() {
        assertThat(inspect(rich, """
                {"type":"chat","text":"hi","word":"abc","kind":"b","mail":"a@example.com","when":"2026-11-23T10:15:02Z",
                 "n":null,"tags":["x"],"one":5,"any":"s","no":1,"meta":{"ab":1},\
                "pair":["p"]}""")).isEqualTo(Verdict.ALLOW);
        // failFast must not cut an anyOf/oneOf short at its first failing branch.
        assertThat(inspect(rich, "{\"type\":\"chat\",\"any\":7,\"one\":\"s\",\"n\":99}"))
                .isEqualTo(Verdict.ALLOW);
    }

    @Test
    void typeFieldPicksTheSchema() {
        final ContentRules byType = ContentRules.compile(Rules.messages(
                Optional.of(new MessagePolicy.JsonPolicy(
                        true,
                        Optional.empty(),
                        Optional.of("type"),
                        Map.of(
                                "chat", Rules.write(dir, "chat.json", Rules.CHAT_SCHEMA),
                                "typing", Rules.write(dir, "typing.json", """
                                {"type":"object","required":["type","on"],\
                                "properties":{"on":{"type":"boolean"}}}""")))),
                Optional.empty(),
                List.of()));
        assertThat(inspect(byType, "{\"type\":\"chat\",\"text\":\"hi\"}")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(byType, "{\"type\":\"typing\",\"on\":true}")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(byType, "{\"type\":\"typing\",\"on\":\"SECRET\"}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.on: expected boolean"));
        assertThat(inspect(byType, "{\"type\":\"chat\",\"on\":true}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$: required property 'text' missing"));
        assertThat(inspect(byType, "{\"type\":\"SECRET\"}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.type: not one of chat, typing"));
        assertThat(inspect(byType, "{\"type\":7}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.type: not one of chat, typing"));
        assertThat(inspect(byType, "{\"text\":\"SECRET\"}"))
                .isEqualTo(
                        new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.type: missing (expected: one of chat, typing)"));
        assertThat(inspect(byType, "[1]"))
                .isEqualTo(new Verdict.Deny(
                        Reason.SCHEMA_VIOLATION, "$: expected object (with .type: one of chat, typing)"));
    }

    @Test
    void remoteReferencesAreNeverFetched() throws Exception {
        final AtomicInteger requests = new AtomicInteger();
        final HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            requests.incrementAndGet();
            final byte[] body = "{\"type\":\"integer\"}".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        try {
            final String base = "http://127.0.0.1:" + server.getAddress().getPort();
            for (String schema : List.of(
                    "{\"properties\":{\"x\":{\"$ref\":\"" + base + "/x.json\"}}}",
                    "{\"$id\":\"" + base + "/root.json\",\"properties\":{\"x\":{\"$ref\":\"x.json\"}}}",
                    "{\"$schema\":\"" + base + "/meta\",\"type\":\"object\"}",
                    "{\"properties\":{\"x\":{\"$ref\":\"other-file.json\"}}}")) {
                final Path file = Rules.write(dir, "remote.json", schema);
                assertThatThrownBy(() -> Rules.json(file, true))
                        .isInstanceOf(ContentRulesException.class)
                        .hasFieldOrPropertyWithValue("field", "messages.json.schema")
                        .hasMessageStartingWith(file.toString());
            }
            assertThat(requests).hasValue(0);
        } finally {
            server.stop(0);
        }
    }

    @Test
    void compileErrorsNameTheFieldTheFileAndWhatWasExpected() {
        final Path broken =
                Rules.write(dir, "broken.json", "{\n  \"type\": \"object\",\n  \"properties\": { \"a\": }\n}\n");
        assertThatThrownBy(() -> Rules.json(broken, true))
                .hasFieldOrPropertyWithValue("field", "messages.json.schema")
                .hasMessageStartingWith(broken + ":3:24: not JSON: ");
        final Path missing = dir.resolve("missing.json");
        assertThatThrownBy(() -> Rules.json(missing, true)).hasMessage("file not found: " + missing);
        assertThatThrownBy(() -> Rules.json(Rules.write(dir, "array.json", "[]"), true))
                .hasMessageContaining("not a JSON Schema: the document is not an object");
        assertThatThrownBy(() ->
                        Rules.json(Rules.write(dir, "bad-type.json", "{\"properties\":{\"a\":{\"type\":5}}}"), true))
                .hasMessageContaining("bad-type.json: not a valid JSON Schema: $.properties.a.type: ");
        assertThatThrownBy(() -> Rules.json(Rules.write(dir, "bad-min.json", "{\"minLength\":\"x\"}"), true))
                .hasMessageContaining("bad-min.json: not a valid JSON Schema: $.minLength: expected integer");
        assertThatThrownBy(() -> Rules.json(Rules.write(dir, "dangling.json", "{\"$ref\":\"#/$defs/nope\"}"), true))
                .hasMessageContaining("dangling.json: ")
                .hasMessageContaining("#/$defs/name");
        assertThatThrownBy(() ->
                        Rules.json(Rules.write(dir, "dup.json", "{\"type\":\"object\",\"type\":\"string\"}"), true))
                .hasMessageStartingWith(dir.resolve("dup.json") + ":1:24: not JSON: Duplicate");
        assertThatThrownBy(() -> Rules.json(Rules.write(dir, "lookahead.json", "{\"pattern\":\"a(?=b)\"}"), true))
                .hasMessageContaining("lookahead.json: a pattern is not an RE2 regular "
                        + "expression: invalid or unsupported Perl syntax");
        assertThat(assertTimeoutPreemptively(
                        Duration.ofSeconds(2),
                        () -> catchThrowable(() -> Rules.json(
                                Rules.write(dir, "nested.json", "{\"pattern\":\"((a{1000}){1000}){1000}\"}"), true))))
                .hasMessageContaining("nested.json: a pattern is not an RE2 regular expression wsguard accepts:"
                        + " its nested repetitions expand to about 1000000000 instructions (expected: at most 100000)");
        assertThatThrownBy(() -> ContentRules.compile(Rules.messages(
                        Optional.of(new MessagePolicy.JsonPolicy(
                                true,
                                Optional.empty(),
                                Optional.of("type"),
                                Map.of("chat", Rules.write(dir, "chat.json", Rules.CHAT_SCHEMA), "typing", missing))),
                        Optional.empty(),
                        List.of())))
                .hasFieldOrPropertyWithValue("field", "messages.json.schemas.typing");
    }

    @Test
    void localReferencesAndOtherDraftsWork() {
        final ContentRules refs = Rules.json(Rules.write(dir, "refs.json", """
                {"$defs":{"name":{"type":"string","maxLength":3}},\
                "properties":{"a":{"$ref":"#/$defs/name"}}}"""), true);
        assertThat(inspect(refs, "{\"a\":\"abc\"}")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(refs, "{\"a\":\"SECRET\"}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.a: longer than 3 characters"));
        final ContentRules draft7 = Rules.json(Rules.write(dir, "draft7.json", """
                {"$schema":"http://json-schema.org/draft-07/schema#","type":"object","required":["a"]}"""), true);
        assertThat(inspect(draft7, "{}"))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$: required property 'a' missing"));
    }

    @Test
    void schemaPatternsCannotBacktrack() {
        final ContentRules redos = Rules.json(Rules.write(dir, "redos.json", """
                {"type":"object","properties":{"a":{"type":"string","pattern":"(a+)+$"},\
                "b":{"pattern":"\\\\u0041+"}}}"""), true);
        // The classic: java.util.regex backtracks exponentially before it can say "no match".
        final String evil = "{\"a\":\"" + "a".repeat(50_000) + "!\"}";
        assertThat(assertTimeoutPreemptively(Duration.ofSeconds(1), () -> inspect(redos, evil)))
                .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$.a: does not match (a+)+$"));
        assertThat(inspect(redos, "{\"a\":\"" + "a".repeat(50_000) + "\"}")).isEqualTo(Verdict.ALLOW);
        // ECMA-262's \\u escapes are rewritten for RE2.
        assertThat(inspect(redos, "{\"b\":\"xAx\"}")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(redos, "{\"b\":\"xyz\"}")).isInstanceOf(Verdict.Deny.class);
    }

    @Test
    void formatIsAnAnnotationBecauseItsCheckersAreNotSafeOnHostileStrings() {
        // networknt's checkers would overflow the stack (hostname, uri-template) or compile the client's
        // string as a pattern (regex): as in draft 2020-12 by default, format is not asserted.
        final ContentRules formats = Rules.json(Rules.write(dir, "formats.json", """
                {"properties":{"host":{"format":"hostname"},"tpl":{"format":"uri-template"},"re":{"format":"regex"},
                 "mail":{"format":"email"}}}"""), true);
        for (String message : List.of(
                "{\"host\":\"" + "a-".repeat(30_000) + "\"}",
                "{\"tpl\":\"" + "{".repeat(60_000) + "\"}",
                "{\"re\":\"((a{1000}){1000}){1000}\"}",
                "{\"mail\":\"\\\"@" + "a".repeat(60_000) + "\"}")) {
            assertThat(assertTimeoutPreemptively(Duration.ofSeconds(1), () -> inspect(formats, message)))
                    .isEqualTo(Verdict.ALLOW);
        }
    }

    @Test
    void evaluationIsBoundedByMaxSize() {
        // Nested anyOf over a long array: each item evaluated many times, but within the step budget.
        final ContentRules costly = Rules.json(Rules.write(dir, "costly.json", """
                {"type":"array","items":{"anyOf":[{"type":"string"},{"type":"number"},{"type":"object"},\
                {"type":"boolean"}]}}"""), true);
        final String many = "[" + "true,".repeat(12_000) + "true]";
        assertThat(assertTimeoutPreemptively(Duration.ofSeconds(2), () -> inspect(costly, many)))
                .isEqualTo(Verdict.ALLOW);
        // A schema that evaluates each item a hundred times goes past the budget (16 steps per byte of maxSize).
        final ContentRules tooCostly = Rules.json(
                Rules.write(
                        dir,
                        "too-costly.json",
                        "{\"allOf\":["
                                + String.join(
                                        ",", java.util.Collections.nCopies(100, "{\"items\":{\"type\":\"boolean\"}}"))
                                + "]}"),
                true);
        assertThat(assertTimeoutPreemptively(Duration.ofSeconds(5), () -> inspect(tooCostly, many)))
                .isEqualTo(new Verdict.Deny(
                        Reason.SCHEMA_VIOLATION,
                        "$: too costly to validate (more than 1048576 schema evaluation steps)"));
    }

    @Test
    void whereJsonIsOptionalTextThatStartsLikeJsonButDoesNotParseIsRefused() {
        // A lax upstream parser (Jackson 2, Go's Decoder) reads the document and ignores the rest: the
        // schema must not be skipped for it.
        final ContentRules optional = Rules.json(Rules.write(dir, "chat.json", Rules.CHAT_SCHEMA), false);
        for (String ambiguous : List.of(
                "{\"type\":\"admin\",\"text\":\"a\"} x",
                "{\"type\":\"admin\",\"text\":\"a\"}{}",
                "{\"type\":\"admin\",\"text\":\"a\",}",
                "  [1, 2")) {
            assertThat(inspect(optional, ambiguous))
                    .as(ambiguous)
                    .isInstanceOf(Verdict.Deny.class)
                    .extracting(v -> ((Verdict.Deny) v).reason())
                    .isEqualTo(Reason.INVALID_JSON);
        }
        // Plain text still passes where JSON is optional, and valid chat messages too.
        assertThat(inspect(optional, "hello there")).isEqualTo(Verdict.ALLOW);
        assertThat(inspect(optional, "{\"type\":\"chat\",\"text\":\"hi\"}")).isEqualTo(Verdict.ALLOW);
    }
}
