package io.wsguard.cluster;

import io.lettuce.core.RedisURI;
import io.lettuce.core.StaticCredentialsProvider;
import io.wsguard.policy.RateLimitStorePolicy.RedisPolicy;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/** The policy's Redis URI as Lettuce takes it, and as it may be shown. */
final class RedisUris {

    /**
     * The most a connection's setup may take: TLS handshake, HELLO/AUTH, a Sentinel's answer, a
     * Redis Cluster's slot map. No decision waits for it (calls fail fast until connected), so it
     * need not be as short as the policy's {@code timeout}; at 200 ms a TLS handshake on a busy
     * host failed again and again and the store never connected.
     */
    static final Duration SETUP_TIMEOUT = Duration.ofSeconds(2);

    private RedisUris() {}

    /**
     * The URI with the policy's {@code password} (which wins over one in the URI) and a setup
     * timeout of at least {@link #SETUP_TIMEOUT} (commands time out after the policy's
     * {@code timeout}: RedisStore sets that in the client's options, which win over the URI's).
     * One element: a standalone server, a Sentinel group (its sentinels are inside the URI), or a
     * seed node of a Redis Cluster, from which Lettuce learns the rest.
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
        uri.setTimeout(policy.timeout().compareTo(SETUP_TIMEOUT) > 0 ? policy.timeout() : SETUP_TIMEOUT);
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
