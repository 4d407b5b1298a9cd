package io.wsguard.message;

import java.util.ArrayList;
import java.util.List;
import tools.jackson.core.TokenStreamContext;

/**
 * One {@code sanitize.fields} entry, such as {@code $.text}, {@code $.user.name},
 * {@code $['display name']} or {@code $.items[*].title}, compiled once.
 *
 * <p>A path selects the value it names and everything under it: {@code $.user} sanitizes every
 * string inside {@code user}. {@code [*]} (or {@code .*}) is any member of an object or any item of
 * an array. Matching walks Jackson's parsing context, so it allocates nothing per message.
 */
final class FieldPath {

    /** A segment that matches any member or item. */
    private static final Object ANY = new Object();

    static final String EXPECTED = "expected: a JSON path like $.text, $.user.name or $.items[*].title;"
            + " supported: .name, ['name'], [n], [*]";

    /** Each a member name (String), an array index (Integer) or {@link #ANY}. */
    private final Object[] segments;

    private final String text;

    private FieldPath(Object[] segments, String text) {
        this.segments = segments;
        this.text = text;
    }

    /** Parses {@code text}; the exception's message is written for the user. */
    static FieldPath parse(String text) {
        if (!text.startsWith("$")) {
            throw problem(text, "does not start with $", 0);
        }
        final List<Object> out = new ArrayList<>();
        int i = 1;
        while (i < text.length()) {
            final char c = text.charAt(i);
            if (c == '.') {
                if (i + 1 < text.length() && text.charAt(i + 1) == '*') {
                    out.add(ANY);
                    i += 2;
                    continue;
                }
                int end = i + 1;
                while (end < text.length() && isNameChar(text.charAt(end))) {
                    end++;
                }
                if (end == i + 1) {
                    throw problem(text, "a name must follow '.'", i + 1);
                }
                out.add(text.substring(i + 1, end));
                i = end;
            } else if (c == '[') {
                i = bracket(text, i, out);
            } else {
                throw problem(text, "unexpected '" + c + "'", i);
            }
        }
        return new FieldPath(out.toArray(), text);
    }

    /** {@code [n]}, {@code [*]}, {@code ['name']} or {@code ["name"]} at {@code open}; returns the index after it. */
    private static int bracket(String text, int open, List<Object> out) {
        int i = open + 1;
        if (i >= text.length()) {
            throw problem(text, "unclosed '['", open);
        }
        final char c = text.charAt(i);
        if (c == '*') {
            out.add(ANY);
            i++;
        } else if (c >= '0' && c <= '9') {
            int end = i;
            while (end < text.length() && Character.isDigit(text.charAt(end)) && end - i < 10) {
                end++;
            }
            final long index = Long.parseLong(text.substring(i, end));
            if (index > Integer.MAX_VALUE) {
                throw problem(text, "index too large", i);
            }
            out.add((int) index);
            i = end;
        } else if (c == '\'' || c == '"') {
            final StringBuilder name = new StringBuilder();
            i++;
            while (true) {
                if (i >= text.length()) {
                    throw problem(text, "unclosed quote", open + 1);
                }
                final char d = text.charAt(i);
                if (d == c) {
                    i++;
                    break;
                }
                if (d == '\\' && i + 1 < text.length()) {
                    name.append(text.charAt(i + 1));
                    i += 2;
                    continue;
                }
                name.append(d);
                i++;
            }
            out.add(name.toString());
        } else {
            throw problem(text, "expected a number, * or a quoted name after '['", i);
        }
        if (i >= text.length() || text.charAt(i) != ']') {
            throw problem(text, "unclosed '['", open);
        }
        return i + 1;
    }

    private static boolean isNameChar(char c) {
        return c != '.' && c != '[' && c != ']' && c != '\'' && c != '"' && c != '*' && !Character.isWhitespace(c);
    }

    private static IllegalArgumentException problem(String text, String what, int index) {
        return new IllegalArgumentException(
                "'" + text + "' is not a JSON path: " + what + " at column " + (index + 1) + " (" + EXPECTED + ")");
    }

    /**
     * Whether the value the parser stands on lies at or under this path; {@code context} is the
     * parser's context for that value (the object or array holding it, or the root).
     */
    boolean covers(TokenStreamContext context) {
        final int depth = context.getNestingDepth();
        if (segments.length > depth) {
            return false;
        }
        TokenStreamContext level = context;
        for (int d = depth; d > segments.length; d--) {
            level = level.getParent();
        }
        for (int s = segments.length - 1; s >= 0; s--) {
            if (!matches(segments[s], level)) {
                return false;
            }
            level = level.getParent();
        }
        return true;
    }

    private static boolean matches(Object segment, TokenStreamContext level) {
        if (segment == ANY) {
            return true;
        }
        if (segment instanceof Integer index) {
            return level.inArray() && level.getCurrentIndex() == index;
        }
        return level.inObject() && segment.equals(level.currentName());
    }

    @Override
    public String toString() {
        return text;
    }
}
