package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.List;
import java.util.Optional;

/** Binds {@code rateLimitStore} into a {@link RateLimitStorePolicy}: local buckets, or Redis. */
final class RateLimitStoreBinder {

    private final Values v;

    RateLimitStoreBinder(Values v) {
        this.v = v;
    }

    Optional<RateLimitStorePolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("type", "redis"), "a map with type");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> type = f.get("type")
                .map(n -> v.choice(n, f.child("type"), "local", "redis"))
                .orElse(Optional.of("local"));
        final Optional<RateLimitStorePolicy.RedisPolicy> redis =
                f.get("redis").flatMap(n -> redis(n, f.child("redis")));
        if (type.filter("redis"::equals).isPresent() && !f.has("redis")) {
            v.problem(f.map(), path, "type redis needs redis (expected: redis: {uri: redis://host:6379})");
        }
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(
                new RateLimitStorePolicy(Values.enumOf(RateLimitStorePolicy.Type.class, type.orElseThrow()), redis));
    }

    private Optional<RateLimitStorePolicy.RedisPolicy> redis(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("uri", "onUnavailable"), "a map with uri");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> uri = f.get("uri")
                .map(n -> v.parse(n, f.child("uri"), text -> {
                    URI u;
                    try {
                        u = new URI(text);
                    } catch (URISyntaxException e) {
                        u = URI.create("invalid:x");
                    }
                    if ((!"redis".equals(u.getScheme()) && !"rediss".equals(u.getScheme())) || u.getHost() == null) {
                        // Never echo it: a Redis URI may hold a password.
                        throw new IllegalArgumentException(
                                "is not a Redis URI (expected: redis://host:6379 or rediss://host:6379)");
                    }
                    try {
                        // What the client will parse at start: a port or database it cannot read fails here.
                        io.lettuce.core.RedisURI.create(text);
                    } catch (RuntimeException e) {
                        // Never Lettuce's message either: it may quote the URI.
                        throw new IllegalArgumentException("is not a valid Redis URI (expected: "
                                + "redis://[[user:]password@]host[:port][/database])");
                    }
                    return text;
                }))
                .orElse(Optional.of("redis://127.0.0.1:6379"));
        final Optional<String> onUnavailable = f.get("onUnavailable")
                .map(n -> v.choice(n, f.child("onUnavailable"), "local", "allow", "deny"))
                .orElse(Optional.of("local"));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new RateLimitStorePolicy.RedisPolicy(
                uri.orElseThrow(),
                Values.enumOf(RateLimitStorePolicy.OnUnavailable.class, onUnavailable.orElseThrow())));
    }
}
