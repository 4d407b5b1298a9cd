package io.wsguard.message;

import com.google.re2j.Pattern;
import com.networknt.schema.regex.RegularExpression;
import com.networknt.schema.regex.RegularExpressionFactory;
import io.wsguard.policy.MessagePolicy;

/**
 * JSON Schema's {@code pattern} and {@code patternProperties} matched by RE2/J instead of
 * {@code java.util.regex} (networknt's default): a schema such as {@code "pattern": "(a+)+$"} would
 * otherwise backtrack exponentially on a hostile string; RE2/J's time is linear in its length. ECMA-262's
 * {@code \}{@code uXXXX} escapes are rewritten as RE2's {@code \x{XXXX}};
 * a pattern RE2 cannot run (lookaround, backreferences) fails when the schema is compiled.
 */
final class Re2RegularExpressions implements RegularExpressionFactory {

    static final Re2RegularExpressions INSTANCE = new Re2RegularExpressions();

    private Re2RegularExpressions() {}

    @Override
    public RegularExpression getRegularExpression(String regex) {
        // The same compile as deny rules: RE2 syntax errors and nested-repetition blowups are refused.
        final Pattern pattern = MessagePolicy.DenyRulePolicy.compile(fromEcma(regex));
        // ECMA-262 patterns are unanchored: find, not matches.
        return value -> pattern.matcher(value).find();
    }

    /** Rewrites {@code \}{@code uXXXX} and {@code \}{@code u{X…}} (outside other escapes) as {@code \x{…}}. */
    static String fromEcma(String regex) {
        if (!regex.contains("\\u")) {
            return regex;
        }
        final StringBuilder out = new StringBuilder(regex.length());
        for (int i = 0; i < regex.length(); i++) {
            final char c = regex.charAt(i);
            if (c != '\\' || i + 1 >= regex.length()) {
                out.append(c);
                continue;
            }
            final char next = regex.charAt(i + 1);
            if (next == 'u' && isHex(regex, i + 2, 4)) {
                out.append("\\x{").append(regex, i + 2, i + 6).append('}');
                i += 5;
            } else if (next == 'u' && i + 2 < regex.length() && regex.charAt(i + 2) == '{') {
                final int close = regex.indexOf('}', i + 3);
                if (close > 0 && isHex(regex, i + 3, close - i - 3)) {
                    out.append("\\x{").append(regex, i + 3, close).append('}');
                    i = close;
                } else {
                    out.append(c).append(next);
                    i++;
                }
            } else {
                // Keep any other escape whole, so that "\\u" (an escaped backslash, then u) stays as is.
                out.append(c).append(next);
                i++;
            }
        }
        return out.toString();
    }

    private static boolean isHex(String s, int from, int count) {
        if (count <= 0 || from + count > s.length()) {
            return false;
        }
        for (int i = from; i < from + count; i++) {
            if (Character.digit(s.charAt(i), 16) < 0) {
                return false;
            }
        }
        return true;
    }
}
