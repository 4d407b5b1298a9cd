package io.wsguard.policy;

import java.util.List;
import java.util.Optional;

/**
 * {@code routes[].match}. Exactly one of {@code path} and {@code pathPrefix} is given.
 *
 * @param host exact ({@code chat.example.com}) or one-or-more-label wildcard ({@code *.example.com});
 *     absent: any host
 * @param path exact path
 * @param pathPrefix path prefix, e.g. {@code /chat/}
 * @param listeners names of the listeners the route is served on; empty (the default): every
 *     listener. On any other listener the route does not exist.
 */
public record MatchPolicy(
        Optional<String> host, Optional<String> path, Optional<String> pathPrefix, List<String> listeners) {

    public MatchPolicy {
        listeners = List.copyOf(listeners);
    }

    /** Whether the route is served on the listener called {@code listener}. */
    public boolean servedOn(String listener) {
        return listeners.isEmpty() || listeners.contains(listener);
    }
}
