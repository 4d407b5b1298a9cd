package io.wsguard.policy;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parsers for the policy file's units (docs/policy.md): durations and sizes. */
public final class Units {

    private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h|d)");
    private static final Pattern SIZE = Pattern.compile("(\\d+)(KiB|MiB|GiB)?");

    private Units() {}

    /** {@code 250ms}, {@code 30s}, {@code 5m}, {@code 12h}, {@code 1d}. */
    public static Duration duration(String text) {
        final Matcher m = DURATION.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a duration (expected: like 250ms, 30s, 5m, 12h)");
        }
        final long n;
        try {
            n = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too large (expected: a duration)");
        }
        return switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofDays(n);
        };
    }

    /** {@code 512}, {@code 64KiB}, {@code 1MiB}, {@code 2GiB}: a number of bytes. */
    public static long bytes(String text) {
        final Matcher m = SIZE.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a size (expected: like 512, 64KiB, 1MiB, 2GiB)");
        }
        final long n;
        try {
            n = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too large (expected: a size)");
        }
        final int shift = m.group(2) == null
                ? 0
                : switch (m.group(2)) {
                    case "KiB" -> 10;
                    case "MiB" -> 20;
                    default -> 30;
                };
        if (n > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("'" + text + "' is too large (expected: a size)");
        }
        return n << shift;
    }
}
