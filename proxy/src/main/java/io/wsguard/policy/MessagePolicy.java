package io.wsguard.policy;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code routes[].messages}: what every message must be. The defaults hold on every route, with or
 * without this section (SPEC §3).
 *
 * @param direction defaults to {@code inbound}
 * @param maxSize defaults to 64KiB: the whole message, after decompression
 * @param binaryAllowed {@code binary: allow} (default) or {@code deny}
 * @param compressionAllowed {@code compression: allow} or {@code deny} (default)
 * @param onViolation defaults to {@code close}
 */
public record MessagePolicy(
        Direction direction,
        long maxSize,
        boolean binaryAllowed,
        boolean compressionAllowed,
        Optional<JsonPolicy> json,
        Optional<SanitizePolicy> sanitize,
        List<DenyRulePolicy> deny,
        Action onViolation) {

    public static final long DEFAULT_MAX_SIZE = 64 * 1024;

    public MessagePolicy {
        deny = List.copyOf(deny);
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
    public record JsonPolicy(boolean required, Optional<Path> schema, Optional<String> typeField, Map<String, Path> schemas) {
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
            try {
                return com.google.re2j.Pattern.compile(pattern);
            } catch (com.google.re2j.PatternSyntaxException e) {
                final String fragment = e.getPattern() == null ? "" : e.getPattern();
                final String description = e.getDescription() == null ? "syntax error" : e.getDescription();
                // RE2 refuses what needs backtracking; say so, since Java and PCRE accept these.
                final boolean backtracking = fragment.startsWith("(?=") || fragment.startsWith("(?!")
                        || fragment.startsWith("(?<=") || fragment.startsWith("(?<!")
                        || fragment.matches("\\\\[1-9].*");
                throw new IllegalArgumentException("not an RE2 regular expression: " + description
                        + (fragment.isEmpty() ? "" : " in `" + fragment + "`")
                        + (backtracking ? "; lookaround and backreferences are not supported" : "")
                        + " (expected: an RE2 regular expression)", e);
            }
        }
    }
}
