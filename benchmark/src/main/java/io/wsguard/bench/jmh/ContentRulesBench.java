package io.wsguard.bench.jmh;

import io.wsguard.check.Verdict;
import io.wsguard.message.ContentRules;
import io.wsguard.policy.Action;
import io.wsguard.policy.MessagePolicy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * {@link ContentRules#inspectText} per message, on chat messages {@code {"type":"chat","text":"…","room":"lobby"}}
 * of {@code size} bytes, one rule set at a time and all together:
 * <ul>
 *   <li>{@code jsonParse}: JSON only (no schema), the floor of every JSON route;</li>
 *   <li>{@code jsonSchema}: JSON + a chat schema (type const, text maxLength, room pattern, no extra properties);</li>
 *   <li>{@code deny}: three XSS rules ({@code (?i)<script}, {@code (?i)javascript:}, {@code (?i)\bon[a-z]+\s*=}) on
 *       a route without JSON; {@code denyLiteralsPresent}: text that holds every literal the rules need
 *       ("on", "=", "<", "cript"), so RE2/J itself runs;</li>
 *   <li>{@code sanitizeUnchanged}: JSON + sanitize {@code $.text} (strip) on plain text, the fast path;
 *       {@code sanitizeMarkup}: the same on text with markup, sanitized and rewritten;</li>
 *   <li>{@code all}: JSON + schema + the three rules + sanitize, plain text (allowed unchanged);
 *       {@code allMarkup}: the same with formatting markup (rewritten).</li>
 * </ul>
 */
@State(Scope.Benchmark)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class ContentRulesBench {

    private static final String CHAT_SCHEMA = """
            {"type":"object","required":["type","text"],"additionalProperties":false,
             "properties":{"type":{"const":"chat"},"text":{"type":"string","maxLength":4000},
                           "room":{"type":"string","pattern":"^[a-z0-9-]{1,32}$"}}}""";
    private static final List<MessagePolicy.DenyRulePolicy> XSS_RULES = List.of(
            new MessagePolicy.DenyRulePolicy("script-tag", "(?i)<script"),
            new MessagePolicy.DenyRulePolicy("js-url", "(?i)javascript:"),
            new MessagePolicy.DenyRulePolicy("event-handler", "(?i)\\bon[a-z]+\\s*="));

    @Param({"64", "256", "1024"})
    public int size;

    private ContentRules jsonOnly;
    private ContentRules jsonSchema;
    private ContentRules denyOnly;
    private ContentRules sanitize;
    private ContentRules all;

    private byte[] plain;
    private byte[] markup;
    private byte[] literals;

    @Setup
    public void setUp() throws IOException {
        final Path schema = Files.createTempFile("chat-schema", ".json");
        Files.writeString(schema, CHAT_SCHEMA);
        schema.toFile().deleteOnExit();
        final Optional<MessagePolicy.JsonPolicy> noSchema =
                Optional.of(new MessagePolicy.JsonPolicy(true, Optional.empty(), Optional.empty(), Map.of()));
        final Optional<MessagePolicy.JsonPolicy> chat =
                Optional.of(new MessagePolicy.JsonPolicy(true, Optional.of(schema), Optional.empty(), Map.of()));
        final Optional<MessagePolicy.SanitizePolicy> text =
                Optional.of(new MessagePolicy.SanitizePolicy(MessagePolicy.Html.STRIP, List.of("$.text")));
        jsonOnly = rules(noSchema, Optional.empty(), List.of());
        jsonSchema = rules(chat, Optional.empty(), List.of());
        denyOnly = rules(Optional.empty(), Optional.empty(), XSS_RULES);
        sanitize = rules(noSchema, text, List.of());
        all = rules(chat, text, XSS_RULES);

        plain = message("Hello there, how is everybody doing today? Lunch at noon, room 4. ");
        markup = message("<b>Hello</b> there, <i>how</i> is everybody doing & today? <u>Lunch</u> at noon. ");
        literals = message("conversation = <b>fun</b>, description = <i>a script</i>. ");
        expect(jsonParse(), Verdict.Allow.class);
        expect(jsonSchema(), Verdict.Allow.class);
        expect(deny(), Verdict.Allow.class);
        expect(denyLiteralsPresent(), Verdict.Allow.class);
        expect(sanitizeUnchanged(), Verdict.Allow.class);
        expect(sanitizeMarkup(), Verdict.Rewrite.class);
        expect(all(), Verdict.Allow.class);
        expect(allMarkup(), Verdict.Rewrite.class);
    }

    private static ContentRules rules(
            Optional<MessagePolicy.JsonPolicy> json,
            Optional<MessagePolicy.SanitizePolicy> sanitize,
            List<MessagePolicy.DenyRulePolicy> deny) {
        return ContentRules.compile(new MessagePolicy(
                MessagePolicy.Direction.INBOUND, 64 * 1024, true, false, json, sanitize, deny, Action.CLOSE));
    }

    /** A chat message of exactly {@code size} bytes, its text cut from repetitions of {@code sentence}. */
    private byte[] message(String sentence) {
        final String head = "{\"type\":\"chat\",\"text\":\"";
        final String tail = "\",\"room\":\"lobby\"}";
        final int room = size - head.length() - tail.length();
        final String text = sentence.repeat(room / sentence.length() + 1).substring(0, room);
        final byte[] bytes = (head + text + tail).getBytes(StandardCharsets.UTF_8);
        if (bytes.length != size) {
            throw new IllegalStateException("message of " + bytes.length + " bytes, expected " + size);
        }
        return bytes;
    }

    private static void expect(Verdict verdict, Class<? extends Verdict> type) {
        if (!type.isInstance(verdict)) {
            throw new IllegalStateException("unexpected verdict " + verdict);
        }
    }

    @Benchmark
    public Verdict jsonParse() {
        return jsonOnly.inspectText(plain, 0, plain.length);
    }

    @Benchmark
    public Verdict jsonSchema() {
        return jsonSchema.inspectText(plain, 0, plain.length);
    }

    @Benchmark
    public Verdict deny() {
        return denyOnly.inspectText(plain, 0, plain.length);
    }

    @Benchmark
    public Verdict denyLiteralsPresent() {
        return denyOnly.inspectText(literals, 0, literals.length);
    }

    @Benchmark
    public Verdict sanitizeUnchanged() {
        return sanitize.inspectText(plain, 0, plain.length);
    }

    @Benchmark
    public Verdict sanitizeMarkup() {
        return sanitize.inspectText(markup, 0, markup.length);
    }

    @Benchmark
    public Verdict all() {
        return all.inspectText(plain, 0, plain.length);
    }

    @Benchmark
    public Verdict allMarkup() {
        return all.inspectText(markup, 0, markup.length);
    }
}
