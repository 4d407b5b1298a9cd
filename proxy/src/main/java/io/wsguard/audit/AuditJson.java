package io.wsguard.audit;

import io.wsguard.Version;
import java.io.StringWriter;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import tools.jackson.core.JsonGenerator;
import tools.jackson.core.ObjectWriteContext;
import tools.jackson.core.json.JsonFactory;

/**
 * Formats one audit line (SPEC §5) with Jackson's streaming generator, so escaping is Jackson's and
 * the field order is ours: ts, event, stage, reason, route, client, conn, sub, origin, action,
 * closeCode, status, count, detail, then version and commit on config lines, sample when present and
 * covers on a summed line. The integrity {@code seq} and {@code mac} are appended by {@link MacChain}.
 * Thread-safe (the factory is; each call has its own generator).
 */
final class AuditJson {

    /** Always three fraction digits, always {@code Z}: lines sort and compare as text. */
    static final DateTimeFormatter TS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private static final JsonFactory FACTORY = new JsonFactory();

    private AuditJson() {}

    /**
     * One entry of a summed line's {@code covers}: how many of its events had this event, stage,
     * reason and route. All four are null on the entry that counts events whose breakdown was not kept.
     */
    record Cover(String event, String stage, String reason, String route, long count) {}

    /** One JSON object, no newline; {@code covers} null on an ordinary line. */
    static String format(AuditEvent e, Instant ts, long count, List<Cover> covers) {
        final StringWriter out = new StringWriter(256);
        try (JsonGenerator g = FACTORY.createGenerator(ObjectWriteContext.empty(), out)) {
            g.writeStartObject();
            g.writeStringProperty("ts", TS.format(ts));
            g.writeStringProperty("event", e.event().code());
            g.writeStringProperty("stage", e.stage().code());
            g.writeStringProperty("reason", e.reason().code());
            g.writeStringProperty("route", e.route());
            g.writeStringProperty("client", e.client());
            g.writeStringProperty("conn", e.conn());
            g.writeStringProperty("sub", e.sub());
            g.writeStringProperty("origin", e.origin());
            g.writeStringProperty("action", e.action());
            writeInt(g, "closeCode", e.closeCode());
            writeInt(g, "status", e.status());
            g.writeNumberProperty("count", count);
            g.writeStringProperty("detail", e.detail());
            if (e.event() == AuditEvent.Kind.CONFIG) {
                // Which build refused the policy: a SIEM tells an old instance from a new one in a rollout.
                g.writeStringProperty("version", Version.number());
                g.writeStringProperty("commit", Version.commit());
            }
            if (e.sample() != null) {
                g.writeStringProperty("sample", e.sample());
            }
            if (covers != null) {
                g.writeArrayPropertyStart("covers");
                for (Cover c : covers) {
                    g.writeStartObject();
                    g.writeStringProperty("event", c.event());
                    g.writeStringProperty("stage", c.stage());
                    g.writeStringProperty("reason", c.reason());
                    g.writeStringProperty("route", c.route());
                    g.writeNumberProperty("count", c.count());
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
            g.writeEndObject();
        }
        return out.toString();
    }

    private static void writeInt(JsonGenerator g, String name, Integer value) {
        if (value == null) {
            g.writeNullProperty(name);
        } else {
            g.writeNumberProperty(name, value.intValue());
        }
    }

    /**
     * The longest prefix of {@code text} that is at most {@code maxBytes} bytes in UTF-8, never
     * splitting a character (a surrogate pair counts as one 4-byte character). Runs on the
     * recording thread, so it stops after {@code maxBytes} characters whatever the text's length.
     */
    static String truncateUtf8(String text, int maxBytes) {
        int bytes = 0;
        int i = 0;
        while (i < text.length()) {
            final char c = text.charAt(i);
            final int width;
            final int chars;
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                width = 4;
                chars = 2;
            } else {
                // A lone surrogate is encoded as '?' (1 byte); counting 3 keeps the bound safe.
                width = c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
                chars = 1;
            }
            if (bytes + width > maxBytes) {
                break;
            }
            bytes += width;
            i += chars;
        }
        return i == text.length() ? text : text.substring(0, i);
    }
}
