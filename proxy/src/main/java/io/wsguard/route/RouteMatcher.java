package io.wsguard.route;

import io.wsguard.policy.MatchPolicy;
import java.util.Locale;
import java.util.Optional;

/**
 * A route's compiled {@code match:}: host exact or {@code *.domain} (one or more labels, never a bare
 * suffix), path exact or prefix. Matching is by string comparison, not regular expressions, so a
 * dot in a host can never widen the match.
 */
public final class RouteMatcher {

    private final String exactHost;
    private final String wildcardSuffix;
    private final String path;
    private final boolean prefix;

    private RouteMatcher(String exactHost, String wildcardSuffix, String path, boolean prefix) {
        this.exactHost = exactHost;
        this.wildcardSuffix = wildcardSuffix;
        this.path = path;
        this.prefix = prefix;
    }

    /** Compiles a route's {@code match} section. */
    public static RouteMatcher from(MatchPolicy match) {
        final Optional<String> host = match.host().map(h -> h.toLowerCase(Locale.ROOT));
        final String exact = host.filter(h -> !h.startsWith("*.")).orElse(null);
        final String suffix = host.filter(h -> h.startsWith("*.")).map(h -> h.substring(1)).orElse(null);
        if (match.path().isPresent()) {
            return new RouteMatcher(exact, suffix, match.path().get(), false);
        }
        return new RouteMatcher(exact, suffix, match.pathPrefix().orElse("/"), true);
    }

    /** The path prefix this route strips before appending the rest to the target's path, or null for exact routes. */
    public String pathPrefix() {
        return prefix ? path : null;
    }

    /**
     * How well this route matches, higher is better, or -1 for no match. Host specificity dominates,
     * then exact path over prefix, then prefix length.
     */
    long score(String host, String requestPath) {
        final long hostScore;
        if (exactHost != null) {
            if (!exactHost.equals(host)) {
                return -1;
            }
            hostScore = 2;
        } else if (wildcardSuffix != null) {
            // "*.example.com" needs at least one non-empty label before ".example.com".
            if (host.length() <= wildcardSuffix.length() || !host.endsWith(wildcardSuffix)
                    || host.charAt(host.length() - wildcardSuffix.length() - 1) == '.') {
                return -1;
            }
            hostScore = 1;
        } else {
            hostScore = 0;
        }
        final long pathScore;
        if (prefix) {
            if (!requestPath.startsWith(path)) {
                return -1;
            }
            pathScore = path.length();
        } else {
            if (!requestPath.equals(path)) {
                return -1;
            }
            pathScore = Integer.MAX_VALUE;
        }
        return (hostScore << 40) | pathScore;
    }
}
