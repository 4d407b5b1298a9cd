package io.wsguard.policy;

import java.util.Optional;

/**
 * {@code routes[].match}. Exactly one of {@code path} and {@code pathPrefix} is given.
 *
 * @param host exact ({@code chat.example.com}) or one-or-more-label wildcard ({@code *.example.com});
 *     absent: any host
 * @param path exact path
 * @param pathPrefix path prefix, e.g. {@code /chat/}
 */
public record MatchPolicy(Optional<String> host, Optional<String> path, Optional<String> pathPrefix) {}
