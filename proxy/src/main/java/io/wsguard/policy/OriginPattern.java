package io.wsguard.policy;

/**
 * One entry of {@code routes[].origin.allow}: an exact origin ({@code https://chat.example.com},
 * {@code http://localhost:3000}, {@code https://[2001:db8::1]:8443}) or a wildcard
 * ({@code https://*.example.com}) that stands for one or more labels before the suffix, never for
 * the bare suffix itself. Scheme (http or https) and port are part of the match, as browsers make
 * them part of the origin.
 *
 * @param origin for a wildcard, the origin whose host is the suffix after {@code *.}
 * @param wildcard whether this is a {@code *.} pattern
 */
public record OriginPattern(Origin origin, boolean wildcard) {

    /**
     * Parses a policy entry; the exception's message is written for the user.
     *
     * @throws IllegalArgumentException when {@code text} is not an http(s) origin or wildcard
     */
    public static OriginPattern parse(String text) {
        final Origin parsed = Origin.parse(text, true);
        if (parsed == null
                || !(parsed.scheme().equals("http") || parsed.scheme().equals("https"))) {
            throw new IllegalArgumentException(
                    "'" + text + "' is not an origin (expected: like https://chat.example.com, "
                            + "https://*.example.com or http://[::1]:3000; http or https, no path, no trailing dot)");
        }
        if (parsed.host().startsWith("*.")) {
            return new OriginPattern(new Origin(parsed.scheme(), parsed.host().substring(2), parsed.port()), true);
        }
        return new OriginPattern(parsed, false);
    }

    /** For a wildcard: {@code .example.com}, what a matching host ends with. */
    public String hostSuffix() {
        return "." + origin.host();
    }

    /** Whether {@code candidate} (a parsed Origin header) is allowed by this entry. */
    public boolean matches(Origin candidate) {
        if (!wildcard) {
            return origin.equals(candidate);
        }
        final String host = candidate.host();
        // Parsed hosts have no empty labels, so whatever precedes ".example.com" is one or more
        // whole labels, and "example.com" itself is too short to end with ".example.com".
        return candidate.port() == origin.port()
                && candidate.scheme().equals(origin.scheme())
                && host.length() > origin.host().length() + 1
                && host.endsWith(origin.host())
                && host.charAt(host.length() - origin.host().length() - 1) == '.';
    }

    @Override
    public String toString() {
        return wildcard ? origin.scheme() + "://*." + origin.host() + ":" + origin.port() : origin.key();
    }
}
