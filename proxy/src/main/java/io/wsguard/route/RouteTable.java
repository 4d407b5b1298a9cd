package io.wsguard.route;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Picks the route for a request from its host and path, as NGINX users expect: an exact host beats a
 * wildcard host, which beats a route without host; then an exact path beats the longest path prefix;
 * remaining ties go to the route written first. Paths compare as {@code proxy.pathMatching} says
 * ({@link RouteMatcher}). One table serves one listener: a route tied to other listeners is not in it.
 *
 * @param <R> the route type carried along (the compiled route, or anything else in tests)
 */
public final class RouteTable<R> {

    private final List<Entry<R>> entries;

    private RouteTable(List<Entry<R>> entries) {
        this.entries = List.copyOf(entries);
    }

    /** Builds a table from routes in file order; {@code matcher} gives each route's {@link RouteMatcher}. */
    public static <R> RouteTable<R> of(List<R> routes, Function<R, RouteMatcher> matcher) {
        return new RouteTable<>(
                routes.stream().map(r -> new Entry<>(matcher.apply(r), r)).toList());
    }

    /**
     * The best route for {@code host} (the request's Host, with or without port) and {@code path}
     * (decoded path, no query), or {@code null} when none matches (README, Policy file: 404).
     */
    public R match(String host, String path) {
        final String hostName = normalizeHost(host);
        final String folded = RequestPaths.fold(path);
        Entry<R> best = null;
        long bestScore = -1;
        for (Entry<R> entry : entries) {
            final long score = entry.matcher().score(hostName, entry.matcher().normalized() ? folded : path);
            if (score > bestScore) {
                best = entry;
                bestScore = score;
            }
        }
        return best == null ? null : best.route();
    }

    /**
     * Lower-cases and strips the port and IPv6 brackets' port: {@code Chat.Example.com:8443} →
     * {@code chat.example.com}.
     */
    static String normalizeHost(String host) {
        if (host == null) {
            return "";
        }
        String h = host.strip().toLowerCase(Locale.ROOT);
        if (h.startsWith("[")) {
            final int end = h.indexOf(']');
            return end > 0 ? h.substring(0, end + 1) : h;
        }
        final int colon = h.lastIndexOf(':');
        if (colon >= 0 && h.indexOf(':') == colon) {
            h = h.substring(0, colon);
        }
        if (h.endsWith(".")) {
            h = h.substring(0, h.length() - 1);
        }
        return h;
    }

    private record Entry<R>(RouteMatcher matcher, R route) {}
}
