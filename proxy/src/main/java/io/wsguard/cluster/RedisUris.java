package io.wsguard.cluster;

import io.lettuce.core.RedisURI;
import io.lettuce.core.StaticCredentialsProvider;
import io.wsguard.policy.RateLimitStorePolicy.RedisPolicy;
import java.util.List;
import java.util.stream.Collectors;

/** The policy's Redis URI as Lettuce takes it, and as it may be shown. */
final class RedisUris {

    private RedisUris() {}

    /**
     * The URI with the policy's {@code password} (which wins over one in the URI) and {@code timeout}
     * applied. One element: a standalone server, a Sentinel group (its sentinels are inside the URI),
     * or a seed node of a Redis Cluster, from which Lettuce learns the rest.
     */
    static List<RedisURI> parse(RedisPolicy policy) {
        final RedisURI uri = RedisURI.create(policy.uri());
        policy.password().ifPresent(secret -> {
            // The URI's user stays (Redis 6 ACLs); the password is the policy's. With Sentinel it is
            // the master's and the replicas'; a sentinel with its own password has it in the URI.
            final String user = uri.getCredentialsProvider() instanceof StaticCredentialsProvider fixed
                    ? fixed.resolveCredentialsNow().getUsername()
                    : null;
            uri.setCredentialsProvider(
                    new StaticCredentialsProvider(user, secret.value().toCharArray()));
        });
        uri.setTimeout(policy.timeout());
        return List.of(uri);
    }

    /** Hosts and ports, and the Sentinel master or cluster mode: never a password. */
    static String describe(List<RedisURI> uris, RedisPolicy policy) {
        return uris.stream()
                .map(uri -> {
                    if (!uri.getSentinels().isEmpty()) {
                        return "sentinel "
                                + uri.getSentinels().stream()
                                        .map(s -> s.getHost() + ":" + s.getPort())
                                        .collect(Collectors.joining(","))
                                + " master " + uri.getSentinelMasterId();
                    }
                    return (policy.cluster() ? "cluster seed " : "") + uri.getHost() + ":" + uri.getPort();
                })
                .collect(Collectors.joining(" "));
    }
}
