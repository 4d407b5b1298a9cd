package io.wsguard.message;

import java.nio.charset.StandardCharsets;

/**
 * The text of a message with every JSON escape sequence replaced by the character it stands for,
 * wherever it appears, whether or not the message parses as JSON.
 *
 * <p>Deny rules look behind escapes through the JSON parse when there is one. When there is none (the
 * route does not require JSON, and the message has trailing content, a duplicate key, a comment, or is
 * a bare string), an upstream whose parser is laxer still decodes a backslash, {@code u003c},
 * {@code script} to {@code <script}: the rules must see that too. Only the escapes of RFC 8259 §7 are replaced; a
 * lone or invalid {@code \\u} sequence stays as written, a lone surrogate becomes U+FFFD.
 */
final class JsonEscapes {

    private JsonEscapes() {}

    /** The UTF-8 text of {@code [off, off+len)} with its JSON escapes decoded. */
    static String decode(byte[] buf, int off, int len) {
        final String text = new String(buf, off, len, StandardCharsets.UTF_8);
        if (text.indexOf('\\') < 0) {
            return text;
        }
        final StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            final char c = text.charAt(i);
            if (c != '\\' || i + 1 >= text.length()) {
                out.append(c);
                continue;
            }
            final char e = text.charAt(i + 1);
            final int simple =
                    switch (e) {
                        case '"', '\\', '/' -> e;
                        case 'b' -> '\b';
                        case 'f' -> '\f';
                        case 'n' -> '\n';
                        case 'r' -> '\r';
                        case 't' -> '\t';
                        default -> -1;
                    };
            if (simple >= 0) {
                out.append((char) simple);
                i++;
                continue;
            }
            final int unit = e == 'u' ? hex4(text, i + 2) : -1;
            if (unit < 0) {
                out.append(c);
                continue;
            }
            i += 5;
            if (Character.isHighSurrogate((char) unit)
                    && i + 6 < text.length()
                    && text.charAt(i + 1) == '\\'
                    && text.charAt(i + 2) == 'u') {
                final int low = hex4(text, i + 3);
                if (low >= 0 && Character.isLowSurrogate((char) low)) {
                    out.append((char) unit).append((char) low);
                    i += 6;
                    continue;
                }
            }
            out.append(Character.isSurrogate((char) unit) ? '\uFFFD' : (char) unit);
        }
        return out.toString();
    }

    /** The value of four hex digits at {@code at}, or -1. */
    private static int hex4(String text, int at) {
        if (at + 4 > text.length()) {
            return -1;
        }
        int value = 0;
        for (int i = at; i < at + 4; i++) {
            final int digit = Character.digit(text.charAt(i), 16);
            if (digit < 0) {
                return -1;
            }
            value = value << 4 | digit;
        }
        return value;
    }
}
