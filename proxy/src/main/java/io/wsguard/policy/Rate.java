package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A rate such as {@code 50/s}, {@code 3000/min} or {@code 1MiB/s} (docs/policy.md, units). */
public record Rate(long amount, Duration per) {

    private static final Pattern FORM = Pattern.compile("(\\d+(?:KiB|MiB|GiB)?)/(s|min|h)");

    public Rate {
        if (amount <= 0) {
            throw new IllegalArgumentException("amount: " + amount + " (expected: > 0)");
        }
        requireNonNull(per, "per");
    }

    /** Parses the policy-file form; the message of the exception is written for the user. */
    public static Rate parse(String text) {
        final Matcher m = FORM.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException(
                    "'" + text + "' is not a rate (expected: like 50/s, 3000/min, 10/h or 1MiB/s)");
        }
        final Duration per =
                switch (m.group(2)) {
                    case "s" -> Duration.ofSeconds(1);
                    case "min" -> Duration.ofMinutes(1);
                    default -> Duration.ofHours(1);
                };
        return new Rate(Units.bytes(m.group(1)), per);
    }

    @Override
    public String toString() {
        final String unit = per.equals(Duration.ofSeconds(1)) ? "s" : per.equals(Duration.ofMinutes(1)) ? "min" : "h";
        return amount + "/" + unit;
    }
}
