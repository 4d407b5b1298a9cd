package io.wsguard.policy;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code routes[].messages}: what every message must be. The defaults hold on every route, with or
 * without this section (docs/policy.md).
 *
 * @param direction defaults to {@code inbound}
 * @param maxSize defaults to 64KiB: the whole message, after decompression
 * @param binaryAllowed {@code binary: allow} (default) or {@code deny}
 * @param compressionAllowed {@code compression: allow} or {@code deny} (default)
 * @param onViolation defaults to {@code close}
 * @param maxFragments the most frames one message may arrive in; defaults to
 *     {@link #defaultMaxFragments(long) one per 32 bytes of maxSize, at least 1024}
 */
public record MessagePolicy(
        Direction direction,
        long maxSize,
        boolean binaryAllowed,
        boolean compressionAllowed,
        Optional<JsonPolicy> json,
        Optional<SanitizePolicy> sanitize,
        List<DenyRulePolicy> deny,
        Action onViolation,
        long maxFragments) {

    public static final long DEFAULT_MAX_SIZE = 64 * 1024;

    public MessagePolicy {
        deny = List.copyOf(deny);
    }

    /** With the default {@code maxFragments} for {@code maxSize}. */
    public MessagePolicy(
            Direction direction,
            long maxSize,
            boolean binaryAllowed,
            boolean compressionAllowed,
            Optional<JsonPolicy> json,
            Optional<SanitizePolicy> sanitize,
            List<DenyRulePolicy> deny,
            Action onViolation) {
        this(
                direction,
                maxSize,
                binaryAllowed,
                compressionAllowed,
                json,
                sanitize,
                deny,
                onViolation,
                defaultMaxFragments(maxSize));
    }

    /**
     * {@code maxFragments} when the policy does not say: one frame per 32 bytes of {@code maxSize},
     * at least 1024. A message of {@code maxSize} sent in 64-byte frames (the smallest Autobahn|Testsuite's
     * fragmentation cases use) fits even when every one of its frames reaches wsguard in two reads:
     * a frame split across reads is relayed as two. Empty frames cost no bytes, so without a count
     * one message could go on for ever.
     */
    public static long defaultMaxFragments(long maxSize) {
        return Math.max(1024, maxSize / 32);
    }

    /** {@code messages.direction}. */
    public enum Direction {
        /** Client to upstream only. */
        INBOUND,
        BOTH
    }

    /**
     * {@code messages.json}.
     *
     * @param required defaults to false
     * @param schema one schema for every message
     * @param typeField with {@code schemas}: the field whose value picks the schema
     */
    public record JsonPolicy(
            boolean required, Optional<Path> schema, Optional<String> typeField, Map<String, Path> schemas) {
        public JsonPolicy {
            schemas = Map.copyOf(schemas);
        }
    }

    /**
     * {@code messages.sanitize}.
     *
     * @param fields JSON paths such as {@code $.text}; empty: every string value
     */
    public record SanitizePolicy(Html html, List<String> fields) {
        public SanitizePolicy {
            fields = List.copyOf(fields);
        }
    }

    /** {@code sanitize.html}. */
    public enum Html {
        STRIP,
        FORMATTING,
        NONE
    }

    /**
     * {@code messages.deny[]}: a named regular expression over text messages, in RE2 syntax: matched
     * in time linear in the message, so no pattern can be made to backtrack catastrophically.
     */
    public record DenyRulePolicy(String name, String pattern) {

        /**
         * Compiles {@code pattern}; the exception's message is written for the user, e.g. {@code not an
         * RE2 regular expression: missing closing ) in `(<script` (expected: an RE2 regular expression)}.
         */
        public static com.google.re2j.Pattern compile(String pattern) {
            // RE2/J, unlike RE2, does not bound the program a nested repetition expands to:
            // "((a{1000}){1000}){1000}" runs out of heap while compiling. Refuse it before.
            final long size = programSize(pattern);
            if (size > MAX_PROGRAM_SIZE) {
                throw new IllegalArgumentException(
                        "not an RE2 regular expression wsguard accepts: its nested repetitions expand" + " to about "
                                + size + " instructions (expected: at most " + MAX_PROGRAM_SIZE + ")");
            }
            try {
                return com.google.re2j.Pattern.compile(pattern);
            } catch (com.google.re2j.PatternSyntaxException e) {
                final String fragment = e.getPattern() == null ? "" : e.getPattern();
                final String description = e.getDescription() == null ? "syntax error" : e.getDescription();
                // RE2 refuses what needs backtracking; say so, since Java and PCRE accept these.
                final boolean backtracking = fragment.startsWith("(?=")
                        || fragment.startsWith("(?!")
                        || fragment.startsWith("(?<=")
                        || fragment.startsWith("(?<!")
                        || fragment.matches("\\\\[1-9].*");
                throw new IllegalArgumentException(
                        "not an RE2 regular expression: " + description
                                + (fragment.isEmpty() ? "" : " in `" + fragment + "`")
                                + (backtracking ? "; lookaround and backreferences are not supported" : "")
                                + " (expected: an RE2 regular expression)",
                        e);
            }
        }

        /** Far above any rule or schema pattern written by hand; compiles in milliseconds. */
        static final long MAX_PROGRAM_SIZE = 100_000;

        /**
         * An upper estimate of the instructions {@code pattern} compiles to: each atom (and each
         * {@code * + ?}) counts 1, a counted repetition multiplies what it repeats by its largest
         * count, alternatives add up.
         * Reads the syntax loosely; RE2/J reports real syntax errors afterwards.
         */
        static long programSize(String pattern) {
            final int[] pos = {0};
            return alternation(pattern, pos);
        }

        private static long alternation(String re, int[] pos) {
            long total = sequence(re, pos);
            while (pos[0] < re.length() && re.charAt(pos[0]) == '|') {
                pos[0]++;
                total = Math.min(Long.MAX_VALUE / 2, total + sequence(re, pos));
            }
            return total;
        }

        private static long sequence(String re, int[] pos) {
            long total = 0;
            while (pos[0] < re.length() && re.charAt(pos[0]) != '|' && re.charAt(pos[0]) != ')') {
                final char c = re.charAt(pos[0]);
                long atom = 1;
                if (c == '(') {
                    pos[0]++;
                    if (pos[0] < re.length() && re.charAt(pos[0]) == '?') {
                        // Skip the flags or the group name: (?i) (?i:…) (?P<n>…) (?<n>…)
                        while (pos[0] < re.length() && ":)>".indexOf(re.charAt(pos[0])) < 0) {
                            pos[0]++;
                        }
                        if (pos[0] < re.length() && re.charAt(pos[0]) == ')') {
                            pos[0]++;
                            continue;
                        }
                        pos[0]++;
                    }
                    atom = Math.max(1, alternation(re, pos));
                    pos[0]++;
                } else if (c == '[') {
                    pos[0]++;
                    while (pos[0] < re.length() && re.charAt(pos[0]) != ']') {
                        pos[0] += re.charAt(pos[0]) == '\\' ? 2 : 1;
                    }
                    pos[0]++;
                } else {
                    pos[0] += c == '\\' ? 2 : 1;
                }
                long repeat = 1;
                if (pos[0] < re.length() && re.charAt(pos[0]) == '{') {
                    final int close = re.indexOf('}', pos[0]);
                    final String body = close < 0 ? "" : re.substring(pos[0] + 1, close);
                    if (body.matches("\\d{1,7}(,\\d{0,7})?")) {
                        final String[] counts = body.split(",", -1);
                        repeat =
                                Math.max(1, Long.parseLong(counts[counts.length == 2 && !counts[1].isEmpty() ? 1 : 0]));
                        pos[0] = close + 1;
                    }
                }
                final long repeated = atom > Long.MAX_VALUE / 4 / repeat ? Long.MAX_VALUE / 4 : atom * repeat;
                total = Math.min(Long.MAX_VALUE / 2, total + repeated);
            }
            return total;
        }
    }
}
