package io.wsguard.audit;

import io.wsguard.policy.SyslogPolicy;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * One audit line as an RFC 5424 message:
 *
 * <pre>
 * &lt;PRI&gt;1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [wsguard@32473 reason="…" route="…" seq="…"] MSG
 * </pre>
 *
 * <ul>
 *   <li>PRI is facility × 8 + a severity that fits the event ({@link #severity}).
 *   <li>TIMESTAMP is the line's {@code ts} (RFC 3339, UTC, milliseconds), HOSTNAME the kernel's host
 *       name, PROCID this process's id, MSGID the line's {@code event} ({@code blocked}, …).
 *   <li>The structured data element {@code wsguard@32473} carries {@code reason}, {@code route}
 *       (when the line has one) and {@code seq} (with an integrity key). 32473 is the private
 *       enterprise number RFC 5612 reserves for documentation: wsguard has none of its own.
 *   <li>MSG is the JSON audit line exactly as the file sink writes it, in UTF-8 without a BOM
 *       (RFC 5424's MSG-ANY), so that a receiver's JSON parser takes it as it is.
 * </ul>
 *
 * Used by the sink on the audit writer thread; thread-safe (no state after construction).
 */
final class SyslogFormat {

    /** The SD-ID: a name, {@code @}, and RFC 5612's documentation enterprise number. */
    static final String SD_ID = "wsguard@32473";

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final String NIL = "-";

    private final int facility;
    private final String header; // " HOSTNAME APP-NAME PROCID ", between TIMESTAMP and MSGID

    SyslogFormat(SyslogPolicy.Facility facility, String hostName, String appName, long pid) {
        this.facility = facility.code();
        this.header = " " + headerField(hostName, 255) + " " + headerField(appName, 48) + " " + pid + " ";
    }

    /** The formatted message and what the sink keeps of the line when it loses it. */
    static final class Message {
        private final byte[] bytes;
        private final String ts;
        private final long seq;
        private final String mac;

        Message(byte[] bytes, String ts, long seq, String mac) {
            this.bytes = bytes;
            this.ts = ts;
            this.seq = seq;
            this.mac = mac;
        }

        /** The whole RFC 5424 message, unframed; owned by the sink from here on. */
        byte[] bytes() {
            return bytes;
        }

        /** The line's {@code ts}, or {@code ?}. */
        String ts() {
            return ts;
        }

        /** The line's {@code seq}, or -1. */
        long seq() {
            return seq;
        }

        /** The line's mac, or {@code null}. */
        String mac() {
            return mac;
        }
    }

    Message format(String line) {
        String ts = null;
        String event = null;
        String reason = null;
        String route = null;
        try {
            final JsonNode node = JSON.readTree(line);
            ts = text(node, "ts");
            event = text(node, "event");
            reason = text(node, "reason");
            route = text(node, "route");
        } catch (JacksonException e) {
            // The log formats every line with Jackson: not reached. The message still goes, with NILVALUEs.
        }
        final long seq = MacChain.seqOf(line);
        final StringBuilder m = new StringBuilder(line.length() + 160)
                .append('<')
                .append(facility * 8 + severity(event, reason))
                .append(">1 ")
                .append(ts == null ? NIL : headerField(ts, 64))
                .append(header)
                .append(event == null ? NIL : headerField(event, 32))
                .append(" [")
                .append(SD_ID);
        param(m, "reason", reason);
        param(m, "route", route);
        if (seq >= 0) {
            param(m, "seq", Long.toString(seq));
        }
        m.append("] ").append(line);
        return new Message(
                m.toString().getBytes(StandardCharsets.UTF_8), ts == null ? "?" : ts, seq, MacChain.macOf(line));
    }

    /**
     * RFC 5424 §6.2.1's severity for an audit event: what an operator's filters expect of it.
     * Refusals are warnings (4); changes and would-be refusals notices (5); a refused reload, the
     * shared store going away and lost audit lines errors (3), its return a notice; anything else
     * (connection lines, events added later) informational (6).
     */
    static int severity(String event, String reason) {
        if (event == null) {
            return 6;
        }
        return switch (event) {
            case "blocked" -> 4;
            case "monitored", "modified" -> 5;
            case "config", "audit" -> 3;
            case "store" -> "store_available".equals(reason) ? 5 : 3;
            default -> 6;
        };
    }

    /** The host name the kernel has (no DNS query: it must not stall a start), or {@code -}. */
    static String localHostName() {
        try {
            final Path kernel = Path.of("/proc/sys/kernel/hostname");
            if (Files.isReadable(kernel)) {
                final String name =
                        Files.readString(kernel, StandardCharsets.US_ASCII).strip();
                if (!name.isEmpty()) {
                    return name;
                }
            }
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException | SecurityException e) {
            return NIL;
        }
    }

    private static String text(JsonNode node, String field) {
        final JsonNode value = node.get(field);
        return value == null || value.isNull() ? null : value.asString();
    }

    /** A header field: 1 to {@code max} printable ASCII characters (RFC 5424 §6), else NILVALUE. */
    private static String headerField(String value, int max) {
        if (value == null || value.isEmpty() || value.length() > max) {
            return NIL;
        }
        for (int i = 0; i < value.length(); i++) {
            final char c = value.charAt(i);
            if (c < 33 || c > 126) {
                return NIL;
            }
        }
        return value;
    }

    /** {@code name="value"}, escaping {@code "}, {@code \} and {@code ]} (RFC 5424 §6.3.3); nothing for null. */
    private static void param(StringBuilder m, String name, String value) {
        if (value == null) {
            return;
        }
        m.append(' ').append(name).append("=\"");
        for (int i = 0; i < value.length(); i++) {
            final char c = value.charAt(i);
            if (c == '"' || c == '\\' || c == ']') {
                m.append('\\');
            }
            m.append(c);
        }
        m.append('"');
    }
}
