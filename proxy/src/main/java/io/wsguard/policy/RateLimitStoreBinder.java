package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.time.Duration;
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
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of("uri", "onUnavailable", "cluster", "caFile", "password", "timeout", "leaseTtl"),
                "a map with uri");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> uri = f.get("uri")
                .map(n -> v.parse(n, f.child("uri"), RateLimitStoreBinder::redisUri))
                .orElse(Optional.of("redis://127.0.0.1:6379"));
        final Optional<String> onUnavailable = f.get("onUnavailable")
                .map(n -> v.choice(n, f.child("onUnavailable"), "local", "allow", "deny"))
                .orElse(Optional.of("local"));
        final Optional<Boolean> cluster =
                f.get("cluster").map(n -> v.bool(n, f.child("cluster"))).orElse(Optional.of(false));
        final Optional<Path> caFile = f.get("caFile").flatMap(n -> v.file(n, f.child("caFile")));
        final Optional<Secret> password = f.get("password")
                .flatMap(n -> v.parse(n, f.child("password"), text -> {
                    if (text.isEmpty()) {
                        throw new IllegalArgumentException(
                                "is empty (expected: the password, e.g. password: ${REDIS_PASSWORD}; leave the key out"
                                        + " when Redis has none)");
                    }
                    return new Secret(text);
                }));
        final Optional<Duration> timeout = f.get("timeout")
                .map(n -> v.duration(n, f.child("timeout"), true))
                .orElse(Optional.of(Duration.ofMillis(200)));
        final Optional<Duration> leaseTtl = f.get("leaseTtl")
                .map(n -> v.duration(n, f.child("leaseTtl"), true))
                .orElse(Optional.of(Duration.ofSeconds(15)));
        if (leaseTtl.filter(ttl -> ttl.compareTo(Duration.ofSeconds(3)) < 0).isPresent()) {
            v.problem(
                    f.get("leaseTtl").orElseThrow(),
                    f.child("leaseTtl"),
                    "is under 3s (expected: at least 3s; heartbeats run every third of it, and a slower one would let"
                            + " a live instance's slots expire)");
        }
        if (timeout.isPresent()
                && leaseTtl.isPresent()
                && timeout.get().compareTo(leaseTtl.get().dividedBy(3)) >= 0) {
            v.problem(
                    f.get("timeout").orElse(f.map()),
                    f.child("timeout"),
                    "is not under a third of leaseTtl (expected: a Redis call that ends before the next heartbeat)");
        }
        if (caFile.isPresent() && uri.filter(u -> u.startsWith("rediss")).isEmpty()) {
            v.problem(
                    f.get("caFile").orElseThrow(),
                    f.child("caFile"),
                    "is set but the uri is not rediss:// or rediss-sentinel:// (expected: TLS to Redis when a CA is"
                            + " given)");
        }
        if (cluster.orElse(false) && uri.filter(u -> u.contains("-sentinel://")).isPresent()) {
            v.problem(
                    f.get("cluster").orElseThrow(),
                    f.child("cluster"),
                    "is true with a Sentinel uri (expected: cluster: true with redis:// or rediss:// seed nodes, or a"
                            + " Sentinel uri without cluster)");
        }
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new RateLimitStorePolicy.RedisPolicy(
                uri.orElseThrow(),
                Values.enumOf(RateLimitStorePolicy.OnUnavailable.class, onUnavailable.orElseThrow()),
                cluster.orElseThrow(),
                caFile,
                password,
                timeout.orElseThrow(),
                leaseTtl.orElseThrow()));
    }

    private static final List<String> SCHEMES = List.of("redis", "rediss", "redis-sentinel", "rediss-sentinel");

    private static String redisUri(String text) {
        URI u;
        try {
            u = new URI(text);
        } catch (URISyntaxException e) {
            u = URI.create("invalid:x");
        }
        // A Sentinel URI lists several hosts (host1:26379,host2:26379), which java.net.URI reads as no host.
        final boolean sentinel = u.getScheme() != null && u.getScheme().endsWith("-sentinel");
        if (!SCHEMES.contains(u.getScheme()) || (!sentinel && u.getHost() == null)) {
            // Never echo it: a Redis URI may hold a password.
            throw new IllegalArgumentException("is not a Redis URI (expected: redis://host:6379, rediss://host:6379"
                    + " or redis-sentinel://host:26379#master)");
        }
        // Before Lettuce, which refuses a master-less Sentinel URI with a message we must not quote.
        final int hash = text.indexOf('#');
        if (sentinel && (hash < 0 || hash == text.length() - 1)) {
            throw new IllegalArgumentException(
                    "names no master (expected: redis-sentinel://host:26379[,host:26379]#masterName)");
        }
        try {
            // What the client will parse at start: a port or database it cannot read fails here.
            io.lettuce.core.RedisURI.create(text);
        } catch (RuntimeException e) {
            // Never Lettuce's message either: it may quote the URI.
            throw new IllegalArgumentException("is not a valid Redis URI (expected:"
                    + " redis://[[user:]password@]host[:port][/database], or redis-sentinel://host:26379[,host:26379]"
                    + "#master)");
        }
        return text;
    }
}
