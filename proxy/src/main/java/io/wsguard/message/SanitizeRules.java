package io.wsguard.message;

import io.wsguard.policy.MessagePolicy;
import java.util.ArrayList;
import java.util.List;
import org.owasp.html.HtmlPolicyBuilder;
import org.owasp.html.PolicyFactory;
import org.owasp.html.Sanitizers;
import tools.jackson.core.TokenStreamContext;

/**
 * {@code messages.sanitize}: the OWASP sanitizer's policy for {@code html: strip} (text only) or
 * {@code formatting} (b, i, em, strong, …) and the fields it applies to.
 *
 * <p>Only text that can hold markup goes through the sanitizer: a string with no {@code <} and no
 * {@code &} can hold neither a tag nor a character reference, so it passes byte for byte. The
 * sanitizer would otherwise still rewrite it ({@code a = b} becomes <code>a &amp;#61; b</code>: its output
 * is encoded for any HTML context), changing users' text and writing an audit line for nothing. One
 * exception follows the library: <code>{{</code> and a trailing <code>{</code> still go through it, since it
 * breaks them up (<code>{&lt;!-- --&gt;{</code>) so that a page compiling templates (AngularJS) cannot run an
 * expression from them. Checking for that is also cheaper than calling the sanitizer, which costs
 * microseconds.
 *
 * <p>The sanitizer decodes character references, so its output can hold characters the client
 * never wrote as such: <code>&amp;#x202e;</code> becomes a right-to-left override. Controls other than tab
 * and newline (C0, DEL, C1) and the bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069)
 * are removed from whatever it returns: no page or upstream wants them, and they would reorder or
 * hide text where it is shown (the sanitizer drops most C0 controls itself, not CR, DEL, C1 or bidi).
 */
final class SanitizeRules {

    /** Allows no element: what is left is text, HTML-encoded. */
    static final PolicyFactory STRIP = new HtmlPolicyBuilder().toFactory();

    static final PolicyFactory FORMATTING = Sanitizers.FORMATTING;

    private final PolicyFactory policy;
    /** Empty: every string value. */
    private final FieldPath[] fields;

    /** Whether {@code fields} names JSON paths (otherwise every string value, or the whole text). */
    boolean selectsFields() {
        return fields.length > 0;
    }

    private SanitizeRules(PolicyFactory policy, FieldPath[] fields) {
        this.policy = policy;
        this.fields = fields;
    }

    /** Compiles {@code sanitize}; null when there is nothing to do ({@code html: none}). */
    static SanitizeRules compile(MessagePolicy.SanitizePolicy sanitize) {
        if (sanitize.html() == MessagePolicy.Html.NONE) {
            return null;
        }
        final List<FieldPath> fields = new ArrayList<>();
        for (int i = 0; i < sanitize.fields().size(); i++) {
            try {
                fields.add(FieldPath.parse(sanitize.fields().get(i)));
            } catch (IllegalArgumentException e) {
                throw new ContentRulesException("messages.sanitize.fields[" + i + "]", e.getMessage(), e);
            }
        }
        return new SanitizeRules(
                sanitize.html() == MessagePolicy.Html.STRIP ? STRIP : FORMATTING, fields.toArray(FieldPath[]::new));
    }

    /**
     * Whether UTF-8 {@code buf[off, off+len)} can hold markup (see the class comment): {@code <}, {@code &},
     * <code>{{</code> or a trailing <code>{</code>.
     */
    static boolean mayHoldMarkup(byte[] buf, int off, int len) {
        final int end = off + len;
        for (int i = off; i < end; i++) {
            final byte b = buf[i];
            if (b == '<' || b == '&' || (b == '{' && (i + 1 == end || buf[i + 1] == '{'))) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code chars[off, off+len)} can hold markup (see the class comment). */
    static boolean mayHoldMarkup(char[] chars, int off, int len) {
        final int end = off + len;
        for (int i = off; i < end; i++) {
            final char c = chars[i];
            if (c == '<' || c == '&' || (c == '{' && (i + 1 == end || chars[i + 1] == '{'))) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code text} can hold markup (see the class comment). */
    static boolean mayHoldMarkup(String text) {
        final int end = text.length();
        for (int i = 0; i < end; i++) {
            final char c = text.charAt(i);
            if (c == '<' || c == '&' || (c == '{' && (i + 1 == end || text.charAt(i + 1) == '{'))) {
                return true;
            }
        }
        return false;
    }

    /** Whether the string value the parser stands on ({@code context} holds it) is to be sanitized. */
    boolean selects(TokenStreamContext context) {
        if (fields.length == 0) {
            return true;
        }
        for (FieldPath field : fields) {
            if (field.covers(context)) {
                return true;
            }
        }
        return false;
    }

    /** The sanitizer's output for {@code html}, without the characters no side wants (see the class comment). */
    String sanitize(String html) {
        return withoutUnwanted(policy.sanitize(html));
    }

    /** Tab and newline stay; other C0 controls, DEL, C1 and the bidi overrides and isolates go. */
    static boolean unwanted(char c) {
        return c < 0x20
                ? c != '\t' && c != '\n'
                : (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    }

    /** {@code text} without its {@linkplain #unwanted unwanted} characters; {@code text} itself when it has none. */
    static String withoutUnwanted(String text) {
        int i = 0;
        while (i < text.length() && !unwanted(text.charAt(i))) {
            i++;
        }
        if (i == text.length()) {
            return text;
        }
        final StringBuilder out = new StringBuilder(text.length()).append(text, 0, i);
        for (; i < text.length(); i++) {
            final char c = text.charAt(i);
            if (!unwanted(c)) {
                out.append(c);
            }
        }
        return out.toString();
    }
}
