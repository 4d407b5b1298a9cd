package io.wsguard.audit;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Predicate;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Reads audit lines back (the {@code audit} command): parsing, filtering, the human format, the
 * summary and {@code --follow}. Stateless and thread-safe except {@link Summary}.
 */
public final class AuditReader {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private AuditReader() {}

    /**
     * One parsed audit line; {@code raw} is the line as read. {@code covers} is empty on an ordinary
     * line; on a summed line (a client over {@code audit.linesPerClient}, or past the cap on clients)
     * it splits {@code count} by event, stage, reason and route. {@code connection} is set on a
     * {@code connection} line that records one connection, else null.
     */
    public record Entry(
            Instant ts,
            String event,
            String stage,
            String reason,
            String route,
            String client,
            String conn,
            String sub,
            String origin,
            String action,
            Integer closeCode,
            Integer status,
            long count,
            String detail,
            List<Cover> covers,
            Connection connection,
            String raw) {

        public Entry {
            covers = List.copyOf(covers);
        }
    }

    /**
     * What a {@code connection} line adds to the fields every line has (its close code is the
     * entry's {@code closeCode}): see {@link ConnectionEvent}.
     */
    public record Connection(
            String closedBy,
            String closeReason,
            Instant opened,
            long durationMs,
            long messagesIn,
            long bytesIn,
            long messagesOut,
            long bytesOut,
            String target) {}

    /**
     * One entry of a summed line's {@code covers}. Event, stage, reason and route are all null on the
     * entry that counts events whose breakdown the writer did not keep.
     */
    public record Cover(String event, String stage, String reason, String route, long count) {}

    /** Parses one line; throws {@link IllegalArgumentException} when it is not an audit line. */
    public static Entry parse(String line) {
        final JsonNode n;
        try {
            n = JSON.readTree(line);
        } catch (JacksonException e) {
            throw new IllegalArgumentException("not JSON", e);
        }
        if (n == null || !n.isObject() || text(n, "ts") == null || text(n, "reason") == null) {
            throw new IllegalArgumentException("not an audit line (expected: an object with ts and reason)");
        }
        final Instant ts;
        try {
            ts = Instant.parse(text(n, "ts"));
        } catch (java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException("ts is not an ISO-8601 instant", e);
        }
        return new Entry(
                ts,
                text(n, "event"),
                text(n, "stage"),
                text(n, "reason"),
                text(n, "route"),
                text(n, "client"),
                text(n, "conn"),
                text(n, "sub"),
                text(n, "origin"),
                text(n, "action"),
                integer(n, "closeCode"),
                integer(n, "status"),
                countOf(n),
                Objects.requireNonNullElse(text(n, "detail"), ""),
                covers(n),
                connection(n),
                line);
    }

    /** The connection fields of a {@code connection} line, or null on any other line (and on a drop report). */
    private static Connection connection(JsonNode n) {
        if (!AuditEvent.Kind.CONNECTION.code().equals(text(n, "event")) || text(n, "closedBy") == null) {
            return null;
        }
        final String opened = text(n, "opened");
        final Instant openedAt;
        try {
            openedAt = opened == null ? null : Instant.parse(opened);
        } catch (java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException("opened is not an ISO-8601 instant", e);
        }
        return new Connection(
                text(n, "closedBy"),
                Objects.requireNonNullElse(text(n, "closeReason"), ""),
                openedAt,
                number(n, "durationMs"),
                number(n, "messagesIn"),
                number(n, "bytesIn"),
                number(n, "messagesOut"),
                number(n, "bytesOut"),
                text(n, "target"));
    }

    private static long number(JsonNode n, String field) {
        final JsonNode v = n.get(field);
        return v == null || !v.isNumber() ? 0 : v.asLong();
    }

    private static long countOf(JsonNode n) {
        final JsonNode count = n.get("count");
        return count == null || !count.isNumber() ? 1 : count.asLong();
    }

    private static List<Cover> covers(JsonNode n) {
        final JsonNode covers = n.get("covers");
        if (covers == null || covers.isNull()) {
            return List.of();
        }
        if (!covers.isArray()) {
            throw new IllegalArgumentException("covers is not an array");
        }
        final List<Cover> list = new ArrayList<>(covers.size());
        for (JsonNode c : covers) {
            if (!c.isObject()) {
                throw new IllegalArgumentException("covers holds something other than objects");
            }
            list.add(new Cover(text(c, "event"), text(c, "stage"), text(c, "reason"), text(c, "route"), countOf(c)));
        }
        return list;
    }

    private static String text(JsonNode n, String field) {
        final JsonNode v = n.get(field);
        return v == null || v.isNull() ? null : v.asString();
    }

    private static Integer integer(JsonNode n, String field) {
        final JsonNode v = n.get(field);
        return v == null || !v.isNumber() ? null : v.asInt();
    }

    /**
     * {@code --since}, {@code --event}, {@code --reason}, {@code --route}, {@code --client}; {@code null}:
     * no filter. A summed line matches an event, a reason and a route when one of its {@code covers}
     * entries has all three.
     */
    public record Filter(Instant since, String event, String reason, String route, String client)
            implements Predicate<Entry> {

        /** Without {@code --event}. */
        public Filter(Instant since, String reason, String route, String client) {
            this(since, null, reason, route, client);
        }

        @Override
        public boolean test(Entry e) {
            if ((since != null && e.ts().isBefore(since)) || (client != null && !client.equals(e.client()))) {
                return false;
            }
            if (e.covers().isEmpty() && event != null && !event.equals(e.event())) {
                return false;
            }
            if (e.covers().isEmpty()) {
                return matches(e.reason(), e.route());
            }
            return e.covers().stream().anyMatch(this::matches);
        }

        /** Whether a summed line's {@code covers} entry has the reason and route asked for. */
        public boolean matches(Cover c) {
            return (event == null || event.equals(c.event())) && matches(c.reason(), c.route());
        }

        /** How many of {@code e}'s events match: on a summed line, those of the matching {@code covers} entries. */
        public long count(Entry e) {
            if (e.covers().isEmpty()) {
                return e.count();
            }
            return e.covers().stream()
                    .filter(this::matches)
                    .mapToLong(Cover::count)
                    .sum();
        }

        private boolean matches(String eventReason, String eventRoute) {
            return (reason == null || reason.equals(eventReason)) && (route == null || route.equals(eventRoute));
        }
    }

    /**
     * One line for people, e.g. {@code 2026-11-23T10:15:02.117Z blocked handshake origin_denied
     * route=chat client=203.0.113.7 status=403 ×3 origin not allowed}: the fields that are set, the
     * count when more than one, then the detail.
     */
    public static String human(Entry e) {
        if (e.connection() != null) {
            return humanConnection(e, e.connection());
        }
        final StringBuilder b = new StringBuilder(160);
        b.append(AuditJson.TS.format(e.ts()))
                .append(' ')
                .append(e.event())
                .append(' ')
                .append(e.stage())
                .append(' ')
                .append(e.reason());
        field(b, "route", e.route());
        field(b, "client", e.client());
        field(b, "conn", e.conn());
        field(b, "sub", e.sub());
        field(b, "origin", e.origin());
        field(b, "action", e.action());
        field(b, "closeCode", e.closeCode());
        field(b, "status", e.status());
        if (e.count() != 1) {
            b.append(" ×").append(e.count());
        }
        if (!e.detail().isEmpty()) {
            b.append(' ').append(printable(e.detail()));
        }
        if (!e.covers().isEmpty()) {
            b.append(" [");
            for (int i = 0; i < e.covers().size(); i++) {
                final Cover c = e.covers().get(i);
                b.append(i == 0 ? "" : ", ");
                if (c.reason() == null) {
                    b.append("not broken down");
                } else {
                    b.append(c.event())
                            .append(' ')
                            .append(c.stage())
                            .append(' ')
                            .append(c.reason());
                    field(b, "route", c.route());
                }
                b.append(" ×").append(c.count());
            }
            b.append(']');
        }
        return b.toString();
    }

    /**
     * A {@code connection} line for people, e.g. {@code 2026-12-04T20:15:14.620Z connection route=chat
     * client=203.0.113.7 conn=c-12 sub=alice target=ws://10.0.0.5:9000/chat 72.5s in=3/120B out=5/300B
     * closed by proxy: idle_timeout 1001 "session expired" idle timeout 60s}: who and where, how long,
     * messages/bytes each way (in: client to upstream), then how it ended.
     */
    private static String humanConnection(Entry e, Connection c) {
        final StringBuilder b = new StringBuilder(200);
        b.append(AuditJson.TS.format(e.ts())).append(' ').append(e.event());
        field(b, "route", e.route());
        field(b, "client", e.client());
        field(b, "conn", e.conn());
        field(b, "sub", e.sub());
        field(b, "origin", e.origin());
        field(b, "target", c.target());
        b.append(' ').append(seconds(c.durationMs()));
        b.append(" in=").append(c.messagesIn()).append('/').append(c.bytesIn()).append('B');
        b.append(" out=")
                .append(c.messagesOut())
                .append('/')
                .append(c.bytesOut())
                .append('B');
        b.append(" closed by ").append(printable(c.closedBy())).append(": ").append(printable(e.reason()));
        if (e.closeCode() != null) {
            b.append(' ').append(e.closeCode());
        }
        if (!c.closeReason().isEmpty()) {
            b.append(" \"").append(printable(c.closeReason())).append('"');
        }
        if (!e.detail().isEmpty()) {
            b.append(' ').append(printable(e.detail()));
        }
        return b.toString();
    }

    /** {@code 72.5s}, {@code 0.012s}: milliseconds as seconds, to the millisecond, trailing zeros dropped. */
    private static String seconds(long millis) {
        return java.math.BigDecimal.valueOf(millis, 3).stripTrailingZeros().toPlainString() + "s";
    }

    private static void field(StringBuilder b, String name, Object value) {
        if (value != null) {
            b.append(' ').append(name).append('=').append(value instanceof String text ? printable(text) : value);
        }
    }

    /**
     * {@code text} with control characters (C0, DEL, C1) shown as {@code ?}: a token's {@code sub} or an
     * Origin is the client's text, and a newline or an escape sequence in it must not forge a line or
     * drive the operator's terminal.
     */
    static String printable(String text) {
        StringBuilder out = null;
        for (int i = 0; i < text.length(); i++) {
            final char c = text.charAt(i);
            final boolean control = c < 0x20 || (c >= 0x7f && c <= 0x9f);
            if (control && out == null) {
                out = new StringBuilder(text.length()).append(text, 0, i);
            }
            if (out != null) {
                out.append(control ? '?' : c);
            }
        }
        return out == null ? text : out.toString();
    }

    /**
     * {@code --summary}: events (summing {@code count}) by reason, by route, top clients and subjects.
     * A summed line counts by reason and route through its {@code covers}. {@code connection} lines are
     * no blocks or changes: they are counted apart, by how the connections ended.
     */
    public static final class Summary {
        private long events;
        private long lines;
        private final Map<String, Long> byReason = new HashMap<>();
        private final Map<String, Long> byRoute = new HashMap<>();
        private final Map<String, Long> byClient = new HashMap<>();
        private final Map<String, Long> bySubject = new HashMap<>();
        private final Map<String, Long> connectionsByEnd = new HashMap<>();
        private long connections;

        public void add(Entry e) {
            add(e, null);
        }

        /** Adds the events of {@code e} that {@code filter} matches (all when it is null). */
        public void add(Entry e, Filter filter) {
            final long count = filter == null ? e.count() : filter.count(e);
            lines++;
            if (AuditEvent.Kind.CONNECTION.code().equals(e.event())) {
                connections += count;
                final String by = e.connection() == null ? null : e.connection().closedBy();
                connectionsByEnd.merge(by == null ? e.reason() : by + ": " + e.reason(), count, Long::sum);
                return;
            }
            events += count;
            if (e.covers().isEmpty()) {
                byReason.merge(e.reason(), count, Long::sum);
                byRoute.merge(Objects.requireNonNullElse(e.route(), "(none)"), count, Long::sum);
            } else {
                for (Cover c : e.covers()) {
                    if (filter == null || filter.matches(c)) {
                        byReason.merge(
                                Objects.requireNonNullElse(c.reason(), "(not broken down)"), c.count(), Long::sum);
                        byRoute.merge(Objects.requireNonNullElse(c.route(), "(none)"), c.count(), Long::sum);
                    }
                }
            }
            if (e.client() != null) {
                byClient.merge(e.client(), count, Long::sum);
            }
            if (e.sub() != null) {
                bySubject.merge(e.sub(), count, Long::sum);
            }
        }

        public long events() {
            return events;
        }

        public void print(PrintWriter out) {
            out.println(events + " events in " + lines + " lines");
            section(out, "by reason", byReason, Integer.MAX_VALUE);
            section(out, "by route", byRoute, Integer.MAX_VALUE);
            section(out, "top clients", byClient, 10);
            section(out, "top subjects", bySubject, 10);
            if (connections > 0) {
                out.println(connections + " connections closed");
                section(out, "connections by end", connectionsByEnd, Integer.MAX_VALUE);
            }
        }

        private static void section(PrintWriter out, String title, Map<String, Long> counts, int limit) {
            out.println(title + ":");
            counts.entrySet().stream()
                    .sorted(Map.Entry.<String, Long>comparingByValue(Comparator.reverseOrder())
                            .thenComparing(Map.Entry.comparingByKey()))
                    .limit(limit)
                    .forEach(e -> out.println(String.format("  %-40s %d", printable(e.getKey()), e.getValue())));
        }
    }

    /**
     * {@code tail -f}: hands every complete line of {@code file} to {@code lines}, from the start,
     * then polls for more until the thread is interrupted. When the file is rotated (a new file at
     * the path, or the file shrank), the rest of the old file is read first, then the new one from
     * its start. A file that does not exist yet is waited for.
     */
    public static void follow(Path file, Duration poll, Consumer<String> lines) throws IOException {
        FileChannel channel = null;
        Object key = null;
        final ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
        final java.io.ByteArrayOutputStream partial = new java.io.ByteArrayOutputStream();
        try {
            while (!Thread.currentThread().isInterrupted()) {
                if (channel == null) {
                    try {
                        channel = FileChannel.open(file, StandardOpenOption.READ);
                        key = fileKey(file);
                        partial.reset();
                    } catch (NoSuchFileException e) {
                        channel = null;
                    }
                }
                if (channel != null) {
                    while (channel.read(buffer.clear()) > 0) {
                        buffer.flip();
                        while (buffer.hasRemaining()) {
                            final byte b = buffer.get();
                            if (b == '\n') {
                                lines.accept(partial.toString(StandardCharsets.UTF_8));
                                partial.reset();
                            } else {
                                partial.write(b);
                            }
                        }
                    }
                    // Rotated: the old file is drained above; switch to the new one.
                    final Object now = fileKey(file);
                    final boolean shrank = Files.exists(file) && Files.size(file) < channel.position();
                    if ((now != null && !now.equals(key)) || shrank) {
                        channel.close();
                        channel = null;
                        continue;
                    }
                }
                try {
                    Thread.sleep(poll.toMillis());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        } finally {
            if (channel != null) {
                channel.close();
            }
        }
    }

    private static Object fileKey(Path file) {
        try {
            final BasicFileAttributes attrs = Files.readAttributes(file, BasicFileAttributes.class);
            // Without inode numbers (some file systems), fall back to the creation time.
            return attrs.fileKey() != null ? attrs.fileKey() : attrs.creationTime();
        } catch (IOException e) {
            return null;
        }
    }
}
