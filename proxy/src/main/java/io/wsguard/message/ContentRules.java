package io.wsguard.message;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.MessagePolicy;
import io.wsguard.relay.ContentInspector;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.StreamReadConstraints;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.core.io.JsonStringEncoder;
import tools.jackson.core.json.JsonFactory;

/**
 * The content rules of one route's {@code messages:} section: JSON + schema, deny rules, HTML
 * sanitization. Immutable, thread-safe, shared by every connection of the route.
 *
 * <p>Each whole text message goes through, in this order, and the first violation wins:
 * <ol>
 *   <li><b>JSON</b> ({@code json:}): exactly one document, parsed straight from the relay's bytes
 *       within limits a hostile document cannot push (nesting 64, strings and the document at most
 *       {@code maxSize}, numbers 100 chars) and without duplicate keys, exact or differing only in
 *       case (an ambiguous document reads differently to different parsers: a smuggling vector; see
 *       {@link ObjectKeys}). With {@code required: false}, text that is not JSON skips the JSON
 *       checks, but a document refused for a limit or a duplicate key is still refused.</li>
 *   <li><b>Schema</b>: see {@link SchemaRules}.</li>
 *   <li><b>Deny rules</b> ({@code deny:}): RE2 patterns found anywhere in the raw text and, so that
 *       JSON escapes such as {@code \}{@code u003cscript} cannot hide a match, in every decoded string
 *       value and key. (Without escapes every decoded string is a verbatim slice of the raw text, so
 *       that second look is skipped unless a rule uses {@code ^ $ \A \z}; on a route without
 *       {@code json:} it is done when the message looks like JSON.)</li>
 *   <li><b>Sanitize</b> ({@code sanitize:}): the selected string values of a JSON message, or the
 *       whole message when it is not JSON, go through the OWASP sanitizer when they can hold markup
 *       (see {@link SanitizeRules}). Unchanged messages pass byte for byte; a change rewrites only the
 *       changed string tokens.</li>
 *   <li><b>The rewrite, judged again</b>: a sanitized message goes through JSON, schema and deny
 *       rules once more, as it will reach the upstream. The sanitizer decodes character references
 *       (<code>un&amp;#105;on</code> comes out as {@code union}), so a rule can fail only now; the refusal's
 *       detail then starts with {@code sanitized, }.</li>
 * </ol>
 *
 * <p>Audit details name the field, the rule or the parser's reason, never the payload (README, Audit log).
 */
public final class ContentRules implements ContentInspector {

    private static final Logger LOG = LoggerFactory.getLogger(ContentRules.class);

    static final int MAX_DEPTH = 64;
    static final int MAX_NUMBER_LENGTH = 100;
    private static final JsonStringEncoder QUOTER = JsonStringEncoder.getInstance();

    private final long maxSize;
    private final boolean jsonConfigured;
    private final boolean jsonRequired;
    private final SchemaRules schema;
    private final DenyRules deny;
    private final SanitizeRules sanitize;
    private final JsonFactory factory;
    private final boolean active;

    private ContentRules(
            long maxSize, MessagePolicy.JsonPolicy json, SchemaRules schema, DenyRules deny, SanitizeRules sanitize) {
        this.maxSize = maxSize;
        // Fields are JSON paths: a route that names them means JSON messages even without a json
        // section. Sanitizing such a message whole as HTML would turn its quotes into entities.
        this.jsonConfigured = json != null || (sanitize != null && sanitize.selectsFields());
        this.jsonRequired = json != null && json.required();
        this.schema = schema;
        this.deny = deny;
        this.sanitize = sanitize;
        this.factory = JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder()
                        .maxNestingDepth(MAX_DEPTH)
                        .maxStringLength((int) Math.min(maxSize, Integer.MAX_VALUE))
                        .maxNumberLength(MAX_NUMBER_LENGTH)
                        .maxNameLength(maxNameLength(maxSize))
                        .maxDocumentLength(maxSize)
                        .build())
                // JsonScan refuses exact duplicates itself, with keys that differ only in case (ObjectKeys).
                .disable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                // Jackson would quote the message in its errors otherwise; details never hold payload.
                .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
                .build();
        this.active = json != null || deny != null || sanitize != null;
    }

    /** The parser factory with this route's limits (for tests of the limits themselves). */
    JsonFactory parserFactory() {
        return factory;
    }

    static int maxNameLength(long maxSize) {
        return (int) Math.min(maxSize, 50_000);
    }

    /**
     * Reads schema files and compiles everything now.
     *
     * @throws ContentRulesException naming the policy field (e.g. {@code messages.json.schema},
     *     {@code messages.json.schemas.chat}, {@code messages.deny[1].pattern}) and a clear message
     *     (a schema file's JSON syntax error names file:line:col of the schema file)
     */
    public static ContentRules compile(MessagePolicy policy) {
        final MessagePolicy.JsonPolicy json = policy.json().orElse(null);
        final SchemaRules schema = json == null ? null : SchemaRules.compile(json, policy.maxSize());
        final DenyRules deny = DenyRules.compile(policy.deny());
        final SanitizeRules sanitize =
                policy.sanitize().map(SanitizeRules::compile).orElse(null);
        return new ContentRules(policy.maxSize(), json, schema, deny, sanitize);
    }

    /**
     * Whether any content rule is configured (json, deny rules, or sanitize with html != none). When
     * false the relay skips calling inspect entirely.
     */
    public boolean active() {
        return active;
    }

    /**
     * A ping or pong payload or a close reason: the deny rules only, on the bytes as they are (an
     * upstream reads them raw; JSON, schema and sanitizing are for messages). Fails closed.
     */
    @Override
    public Verdict inspectControl(byte[] buf, int off, int len) {
        if (deny == null) {
            return Verdict.ALLOW;
        }
        try {
            final int rule = deny.firstMatch(buf, off, len, deny.size());
            return rule >= 0
                    ? Verdict.deny(Reason.PATTERN_DENIED, "rule " + deny.name(rule) + " matched")
                    : Verdict.ALLOW;
        } catch (RuntimeException | StackOverflowError e) {
            LOG.warn(
                    "content check failed with {}; control frame refused",
                    e.getClass().getName());
            return Verdict.deny(
                    Reason.PATTERN_DENIED,
                    "content check failed (" + e.getClass().getSimpleName() + ")");
        }
    }

    /**
     * One whole text message, already valid UTF-8: bytes {@code [off, off+len)} of {@code buf} (not
     * modified, not kept). Returns {@link Verdict#ALLOW}, a {@link Verdict.Deny} or a
     * {@link Verdict.Rewrite} with {@link Reason#SANITIZED}. Never throws: a failure inside a check
     * refuses the message (fail closed).
     */
    @Override
    public Verdict inspectText(byte[] buf, int off, int len) {
        if (!active) {
            return Verdict.ALLOW;
        }
        return judge(buf, off, len, sanitize);
    }

    /**
     * The checks in order on {@code buf[off, off+len)}; {@code sanitize} is null when judging a
     * rewrite, which is not sanitized again (the sanitizer's output is what goes upstream).
     */
    private Verdict judge(byte[] buf, int off, int len, SanitizeRules sanitize) {
        Reason stage = Reason.INVALID_JSON;
        try {
            JsonScan scan = null;
            // Decoded strings can match where the raw text does not only through escapes or anchors.
            final boolean escapes =
                    deny != null && LiteralFilter.indexOfEither(buf, off, off + len, (byte) '\\', (byte) '\\') >= 0;
            final DenyRules decodedDeny = deny != null && (deny.anchored() || escapes) ? deny : null;
            if (jsonConfigured) {
                if (len > maxSize) {
                    // The relay bounds messages by maxSize already; this keeps the parser's bound whatever the caller.
                    return Verdict.deny(Reason.INVALID_JSON, "not JSON: longer than " + maxSize + " bytes");
                }
                scan = JsonScan.run(factory, buf, off, len, maxSize, schema != null, decodedDeny, sanitize);
                if (scan.failed()) {
                    // With a schema, text that starts like JSON and still fails to parse is ambiguous: a
                    // lax upstream parser reads {"type":"admin"} x as the document the schema refuses.
                    if (jsonRequired || scan.limitExceeded() || (schema != null && looksLikeJson(buf, off, len))) {
                        return Verdict.deny(Reason.INVALID_JSON, scan.failure());
                    }
                    scan = null;
                } else if (schema != null) {
                    stage = Reason.SCHEMA_VIOLATION;
                    final String violation = schema.violation(scan.root());
                    if (violation != null) {
                        return Verdict.deny(Reason.SCHEMA_VIOLATION, violation);
                    }
                }
            } else if (decodedDeny != null && len <= maxSize && looksLikeJson(buf, off, len)) {
                // No json section, yet the upstream may decode JSON: look behind its escapes too.
                scan = JsonScan.run(factory, buf, off, len, maxSize, false, decodedDeny, null);
                if (scan.failed()) {
                    scan = null;
                }
            }
            stage = Reason.PATTERN_DENIED;
            if (deny != null) {
                final int decoded = scan == null ? -1 : scan.deniedRule();
                final int raw = deny.firstMatch(buf, off, len, decoded < 0 ? deny.size() : decoded);
                int rule = raw >= 0 ? raw : decoded;
                if (rule < 0 && escapes && scan == null) {
                    // No parse looked behind the escapes (no JSON, or JSON a lax parser still reads):
                    // the whole text with its escapes decoded, as such an upstream would see the strings.
                    rule = deny.firstMatch(JsonEscapes.decode(buf, off, len), deny.size());
                }
                if (rule >= 0) {
                    return Verdict.deny(Reason.PATTERN_DENIED, "rule " + deny.name(rule) + " matched");
                }
            }
            if (sanitize == null) {
                return Verdict.ALLOW;
            }
            if (jsonConfigured && scan != null) {
                final List<JsonScan.Edit> edits = scan.edits();
                return edits.isEmpty() ? Verdict.ALLOW : rewritten(splice(buf, off, len, edits), changed(edits));
            }
            // Text: the whole message is HTML.
            if (!SanitizeRules.mayHoldMarkup(buf, off, len)) {
                return Verdict.ALLOW;
            }
            final String text = new String(buf, off, len, StandardCharsets.UTF_8);
            final String sanitized = sanitize.sanitize(text);
            return sanitized.equals(text) ? Verdict.ALLOW : rewritten(sanitized, "sanitized the message as HTML");
        } catch (RuntimeException | StackOverflowError e) {
            // A bug or a library failure: refuse rather than pass the message unchecked (fail closed).
            // Only the type is logged: library messages may quote the payload.
            LOG.warn(
                    "content check failed with {}; message refused",
                    e.getClass().getName());
            return Verdict.deny(stage, "content check failed (" + e.getClass().getSimpleName() + ")");
        }
    }

    /**
     * A binary message: refused where JSON is required. Otherwise UTF-8 text sent as binary is checked
     * exactly as a text message (a sanitized rewrite stays binary), since an upstream that parses the
     * frame as text would act on it; binary that is not UTF-8 is refused where JSON or sanitize rules
     * apply (they cannot read it, an upstream decoding it anyway would still see its markup) and
     * matched byte for byte against the deny rules elsewhere.
     */
    @Override
    public Verdict inspectBinary(byte[] buf, int off, int len, boolean utf8) {
        if (!active) {
            return Verdict.ALLOW;
        }
        if (jsonRequired) {
            return Verdict.deny(Reason.INVALID_JSON, "binary message where JSON is required");
        }
        if (utf8) {
            return inspectText(buf, off, len);
        }
        if (jsonConfigured || sanitize != null) {
            return Verdict.deny(
                    Reason.BINARY_DENIED, "binary message that is not UTF-8 where JSON or sanitize rules apply");
        }
        try {
            final int rule = deny == null ? -1 : deny.firstMatch(buf, off, len, deny.size());
            return rule >= 0
                    ? Verdict.deny(Reason.PATTERN_DENIED, "rule " + deny.name(rule) + " matched")
                    : Verdict.ALLOW;
        } catch (RuntimeException | StackOverflowError e) {
            LOG.warn(
                    "content check failed with {}; message refused",
                    e.getClass().getName());
            return Verdict.deny(
                    Reason.PATTERN_DENIED,
                    "content check failed (" + e.getClass().getSimpleName() + ")");
        }
    }

    /**
     * The sanitized message, unless it outgrew {@code maxSize} or breaks a rule the original kept.
     * Escaping grows text up to fivefold (<code>&amp;</code> becomes <code>&amp;amp;</code>), and the upstream must
     * never get more than the route allows. The sanitizer decodes character references, so its
     * output can say what the original only spelled (<code>un&amp;#105;on</code> becomes {@code union}, a
     * string within {@code maxLength} can grow past it): the rewrite goes through JSON, schema and
     * deny rules again, and the upstream gets only a message that the rules judged as it is.
     */
    private Verdict rewritten(String text, String detail) {
        if (text.length() > maxSize) {
            return tooBig();
        }
        final byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > maxSize) {
            return tooBig();
        }
        if (judge(bytes, 0, bytes.length, null) instanceof Verdict.Deny deny) {
            return Verdict.deny(deny.reason(), "sanitized, " + deny.detail());
        }
        return new Verdict.Rewrite(text, Reason.SANITIZED, detail);
    }

    private Verdict tooBig() {
        return Verdict.deny(
                Reason.MESSAGE_TOO_BIG, "sanitized, the message would exceed maxSize of " + maxSize + " bytes");
    }

    /** The message with each edited string token replaced by its new value, JSON-quoted; all else as sent. */
    private static String splice(byte[] buf, int off, int len, List<JsonScan.Edit> edits) {
        final StringBuilder out = new StringBuilder(len + 32);
        int pos = 0;
        for (JsonScan.Edit edit : edits) {
            out.append(new String(buf, off + pos, edit.start() - pos, StandardCharsets.UTF_8))
                    .append('"');
            QUOTER.quoteAsString(edit.value(), out);
            out.append('"');
            pos = edit.end();
        }
        return out.append(new String(buf, off + pos, len - pos, StandardCharsets.UTF_8))
                .toString();
    }

    /** {@code sanitized $.text} or {@code sanitized $.a, $.b, $.c and 2 more}: paths, never content. */
    private static String changed(List<JsonScan.Edit> edits) {
        final StringBuilder out = new StringBuilder("sanitized ");
        for (int i = 0; i < Math.min(3, edits.size()); i++) {
            out.append(i == 0 ? "" : ", ").append(edits.get(i).path());
        }
        if (edits.size() > 3) {
            out.append(" and ").append(edits.size() - 3).append(" more");
        }
        return out.toString();
    }

    private static boolean looksLikeJson(byte[] buf, int off, int len) {
        for (int i = off; i < off + len; i++) {
            final byte b = buf[i];
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
                return b == '{' || b == '[';
            }
        }
        return false;
    }
}
