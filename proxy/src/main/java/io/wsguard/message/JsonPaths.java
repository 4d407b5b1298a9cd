package io.wsguard.message;

import tools.jackson.core.TokenStreamContext;

/**
 * Renders the location of a value for an audit {@code detail}: {@code $.user.name}, {@code $.items[2]}.
 *
 * <p>Member names come from the message, so they are the client's words: a name is shown only when
 * it is short and made of {@code [A-Za-z0-9_-]} (the names a schema declares), and as {@code ['…']}
 * otherwise. That keeps payload text, control characters and log-forging quotes out of the audit log
 * (README, Audit log) while the detail still points at the field.
 */
final class JsonPaths {

    static final int MAX_NAME = 32;
    static final String HIDDEN = "['…']";

    private JsonPaths() {}

    static void appendName(StringBuilder out, String name) {
        if (isPlain(name)) {
            out.append('.').append(name);
        } else {
            out.append(HIDDEN);
        }
    }

    static boolean isPlain(String name) {
        if (name == null || name.isEmpty() || name.length() > MAX_NAME) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            final char c = name.charAt(i);
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
                return false;
            }
        }
        return true;
    }

    /** The path of the value the parser stands on; {@code context} is the one holding it. */
    static String of(TokenStreamContext context) {
        final int depth = context.getNestingDepth();
        final TokenStreamContext[] levels = new TokenStreamContext[depth];
        TokenStreamContext level = context;
        for (int d = depth - 1; d >= 0; d--) {
            levels[d] = level;
            level = level.getParent();
        }
        final StringBuilder out = new StringBuilder("$");
        for (TokenStreamContext l : levels) {
            if (l.inArray()) {
                out.append('[').append(l.getCurrentIndex()).append(']');
            } else {
                appendName(out, l.currentName());
            }
        }
        return out.toString();
    }

    /** Schema-side text (a pattern, a format, enum values) shortened for one audit line. */
    static String shorten(String text, int max) {
        final StringBuilder out = new StringBuilder(Math.min(text.length(), max + 1));
        for (int i = 0; i < text.length() && out.length() < max; i++) {
            final char c = text.charAt(i);
            out.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        return text.length() > max ? out.append('…').toString() : out.toString();
    }
}
