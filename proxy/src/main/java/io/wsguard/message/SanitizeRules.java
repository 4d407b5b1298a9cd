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
 * <p>Most chat text cannot be changed by the sanitizer at all, and calling it costs microseconds,
 * so text made only of "unchanging" characters skips it. That set is not written by hand: it is
 * computed at class initialisation from the sanitizer itself, so the fast path cannot disagree with
 * the library, including a future version of it. An ASCII {@code c} is in the set when
 * {@code sanitize} leaves it unchanged alone, between letters, at either end and doubled:
 * {@code "a" + c + "b"} alone is not enough, because the sanitizer appends {@code <!-- -->} after
 * a trailing {@code {} and between {@code {{} (its guard against template injection), which the
 * property test over random strings found. That test checks strings over the set stay unchanged.
 */
final class SanitizeRules {

    /** Allows no element: what is left is text, HTML-encoded. */
    static final PolicyFactory STRIP = new HtmlPolicyBuilder().toFactory();
    static final PolicyFactory FORMATTING = Sanitizers.FORMATTING;

    private static final boolean[] STRIP_SAFE = unchanging(STRIP);
    private static final boolean[] FORMATTING_SAFE = unchanging(FORMATTING);

    private final PolicyFactory policy;
    private final boolean[] safe;
    /** Empty: every string value. */
    private final FieldPath[] fields;

    /** Whether {@code fields} names JSON paths (otherwise every string value, or the whole text). */
    boolean selectsFields() {
        return fields.length > 0;
    }

    private SanitizeRules(PolicyFactory policy, boolean[] safe, FieldPath[] fields) {
        this.policy = policy;
        this.safe = safe;
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
        return sanitize.html() == MessagePolicy.Html.STRIP
                ? new SanitizeRules(STRIP, STRIP_SAFE, fields.toArray(FieldPath[]::new))
                : new SanitizeRules(FORMATTING, FORMATTING_SAFE, fields.toArray(FieldPath[]::new));
    }

    /** For each ASCII char, whether the sanitizer leaves it alone wherever it stands. */
    static boolean[] unchanging(PolicyFactory policy) {
        final boolean[] safe = new boolean[128];
        for (char c = 0; c < 128; c++) {
            boolean same = true;
            for (String probe : new String[] {"a" + c + "b", String.valueOf(c), "a" + c, c + "a", "" + c + c, "a" + c + c + "b"}) {
                same &= policy.sanitize(probe).equals(probe);
            }
            safe[c] = same;
        }
        return safe;
    }

    /** Whether the sanitizer would leave every char of UTF-8 {@code buf[off, off+len)} alone. */
    boolean unchanging(byte[] buf, int off, int len) {
        for (int i = off; i < off + len; i++) {
            final int b = buf[i];
            if (b < 0 || !safe[b]) {
                return false;
            }
        }
        return true;
    }

    /** Whether the sanitizer would leave every char of {@code chars[off, off+len)} alone. */
    boolean unchanging(char[] chars, int off, int len) {
        for (int i = off; i < off + len; i++) {
            final char c = chars[i];
            if (c >= 128 || !safe[c]) {
                return false;
            }
        }
        return true;
    }

    /** Whether the sanitizer would leave every char of {@code text} alone. */
    boolean unchanging(String text) {
        for (int i = 0; i < text.length(); i++) {
            final char c = text.charAt(i);
            if (c >= 128 || !safe[c]) {
                return false;
            }
        }
        return true;
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

    String sanitize(String html) {
        return policy.sanitize(html);
    }

    boolean[] safeSet() {
        return safe.clone();
    }
}
