package io.wsguard.message;

import com.google.re2j.Pattern;
import io.wsguard.policy.MessagePolicy;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * {@code messages.deny}: named RE2 patterns found anywhere in a text message (and, for JSON, in
 * every decoded string and key; see {@link ContentRules}). RE2/J matches in time linear in the
 * text, so a rule like {@code (a+)+$} cannot be turned against wsguard; each rule's
 * {@link LiteralFilter} keeps RE2/J off messages that cannot match.
 */
final class DenyRules {

    private record Rule(String name, Pattern pattern, LiteralFilter filter) {}

    private final Rule[] rules;
    /** Some rule uses ^, $, \A or \z: a decoded string can match where the raw text cannot, even without escapes. */
    private final boolean anchored;

    private DenyRules(Rule[] rules, boolean anchored) {
        this.rules = rules;
        this.anchored = anchored;
    }

    /** Compiles the rules; null when there are none. */
    static DenyRules compile(List<MessagePolicy.DenyRulePolicy> policies) {
        if (policies.isEmpty()) {
            return null;
        }
        final Rule[] rules = new Rule[policies.size()];
        boolean anchored = false;
        for (int i = 0; i < rules.length; i++) {
            final MessagePolicy.DenyRulePolicy policy = policies.get(i);
            final Pattern pattern;
            try {
                pattern = MessagePolicy.DenyRulePolicy.compile(policy.pattern());
            } catch (IllegalArgumentException e) {
                throw new ContentRulesException("messages.deny[" + i + "].pattern", e.getMessage(), e);
            }
            rules[i] = new Rule(policy.name(), pattern, LiteralFilter.of(policy.pattern()));
            final String p = policy.pattern();
            anchored |= p.indexOf('^') >= 0 || p.indexOf('$') >= 0 || p.contains("\\A") || p.contains("\\z");
        }
        return new DenyRules(rules, anchored);
    }

    boolean anchored() {
        return anchored;
    }

    String name(int rule) {
        return rules[rule].name();
    }

    /**
     * The lowest-numbered rule below {@code limit} found in the UTF-8 text {@code buf[off, off+len)},
     * or -1.
     */
    int firstMatch(byte[] buf, int off, int len, int limit) {
        String text = null;
        for (int i = 0; i < Math.min(limit, rules.length); i++) {
            final Rule rule = rules[i];
            if (!rule.filter().mayMatch(buf, off, len)) {
                continue;
            }
            if (text == null) {
                // Decoded once, and only when some rule needs RE2/J. Not RE2/J's byte[] mode: in 1.8 it
                // sees the start of the text after a trailing multi-byte char ("x|^$" finds a match in
                // "é"), which the property test against the UTF-16 mode found.
                text = new String(buf, off, len, StandardCharsets.UTF_8);
            }
            if (rule.pattern().matcher(text).find()) {
                return i;
            }
        }
        return -1;
    }

    /** The lowest-numbered rule below {@code limit} found in {@code text}, or -1. */
    int firstMatch(CharSequence text, int limit) {
        for (int i = 0; i < Math.min(limit, rules.length); i++) {
            final Rule rule = rules[i];
            if (rule.filter().mayMatch(text) && rule.pattern().matcher(text).find()) {
                return i;
            }
        }
        return -1;
    }

    int size() {
        return rules.length;
    }
}
