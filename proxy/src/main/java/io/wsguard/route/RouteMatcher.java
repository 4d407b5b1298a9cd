package io.wsguard.route;

import io.wsguard.policy.MatchPolicy;
import io.wsguard.policy.ProxyPolicy.PathMatching;
import java.util.Locale;
import java.util.Optional;

/**
 * A route's compiled {@code match:}: host exact or {@code *.domain} (one or more labels, never a bare
 * suffix), path exact or prefix. Matching is by string comparison, not regular expressions, so a
 * dot in a host can never widen the match.
 *
 * <p>With {@code pathMatching: normalized} (the default) paths are compared as most upstream
 * frameworks resolve them: case folded ({@link RequestPaths#fold}) and with one trailing slash
 * ignored, so that {@code /Admin} and {@code /admin/} reach the route of {@code /admin} rather
 * than a laxer one that the upstream would never tell apart from it. {@code exact} compares the
 * decoded path as written.
 */
public final class RouteMatcher {

    private final String exactHost;
    private final String wildcardSuffix;
    /** The path as compared: folded and without a trailing slash for exact routes when normalized. */
    private final String path;

    private final boolean prefix;
    private final boolean normalized;

    private RouteMatcher(String exactHost, String wildcardSuffix, String path, boolean prefix, boolean normalized) {
        this.exactHost = exactHost;
        this.wildcardSuffix = wildcardSuffix;
        this.path = path;
        this.prefix = prefix;
        this.normalized = normalized;
    }

    /** Compiles a route's {@code match} section with the default, {@code normalized} path matching. */
    public static RouteMatcher from(MatchPolicy match) {
        return from(match, PathMatching.NORMALIZED);
    }

    /** Compiles a route's {@code match} section. */
    public static RouteMatcher from(MatchPolicy match, PathMatching pathMatching) {
        final Optional<String> host = match.host().map(h -> h.toLowerCase(Locale.ROOT));
        final String exact = host.filter(h -> !h.startsWith("*.")).orElse(null);
        final String suffix =
                host.filter(h -> h.startsWith("*.")).map(h -> h.substring(1)).orElse(null);
        final boolean normalized = pathMatching == PathMatching.NORMALIZED;
        if (match.path().isPresent()) {
            final String path = match.path().get();
            return new RouteMatcher(
                    exact,
                    suffix,
                    normalized ? RequestPaths.withoutTrailingSlash(RequestPaths.fold(path)) : path,
                    false,
                    normalized);
        }
        final String prefix = match.pathPrefix().orElse("/");
        return new RouteMatcher(exact, suffix, normalized ? RequestPaths.fold(prefix) : prefix, true, normalized);
    }

    /** The path prefix this route strips before appending the rest to the target's path, or null for exact routes. */
    public String pathPrefix() {
        return prefix ? path : null;
    }

    /**
     * The part of {@code requestPath} (the decoded path as sent, not folded) after this prefix
     * route's prefix: what is appended to the target's path. Empty for exact routes, and for a path
     * that matched a prefix {@code /chat/} as {@code /chat}. Folding keeps every character's UTF-16
     * length, so the prefix ends at the same index in the path as sent: its rest keeps its case.
     */
    public String remainder(String requestPath) {
        if (!prefix || requestPath.length() <= path.length()) {
            return "";
        }
        return requestPath.substring(path.length());
    }

    /** The form routes compare paths in: folded when normalized, as it is otherwise. */
    boolean normalized() {
        return normalized;
    }

    /**
     * How well this route matches, higher is better, or -1 for no match. Host specificity dominates,
     * then exact path over prefix, then prefix length.
     *
     * @param requestPath the decoded path, folded if this matcher is normalized
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
            if (host.length() <= wildcardSuffix.length()
                    || !host.endsWith(wildcardSuffix)
                    || host.charAt(host.length() - wildcardSuffix.length() - 1) == '.') {
                return -1;
            }
            hostScore = 1;
        } else {
            hostScore = 0;
        }
        final long pathScore;
        if (prefix) {
            if (!requestPath.startsWith(path) && !(normalized && isPrefixWithoutItsSlash(requestPath))) {
                return -1;
            }
            pathScore = path.length();
        } else {
            if (!(normalized
                    ? RequestPaths.equalsIgnoringTrailingSlash(requestPath, path)
                    : requestPath.equals(path))) {
                return -1;
            }
            pathScore = Integer.MAX_VALUE;
        }
        return (hostScore << 40) | pathScore;
    }

    /** {@code /chat} against the prefix {@code /chat/}: the same path to an upstream that ignores a trailing slash. */
    private boolean isPrefixWithoutItsSlash(String requestPath) {
        return path.length() > 1
                && path.endsWith("/")
                && requestPath.length() == path.length() - 1
                && path.startsWith(requestPath);
    }
}
