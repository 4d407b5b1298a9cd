package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Counter;
import io.wsguard.cluster.RedisStore;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RedisClusterNodes;
import io.wsguard.testing.RedisSentinelGroup;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Redis as operators run it, each topology started for real by the test: a password from
 * {@code ${REDIS_PASSWORD}}, {@code rediss://} with the policy's {@code caFile}, a Sentinel group,
 * and a three-node Redis Cluster. In each, two in-process proxies share one handshake rate (the
 * third handshake for a client is refused on either), and pub/sub carries a message from one
 * proxy's store to the other's.
 */
@Timeout(120)
class RedisTopologiesTest {

    private static final AtomicInteger NEXT_CLIENT = new AtomicInteger(1);
    private static final String PASSWORD = "s3cret-redis-pw";

    @TempDir
    Path dir;

    static UpstreamServer upstream;

    @RegisterExtension
    final CloseAfterEach closeAfter = new CloseAfterEach();

    @BeforeAll
    static void startUpstream() throws Exception {
        upstream = new UpstreamServer();
    }

    @AfterAll
    static void stopUpstream() throws Exception {
        upstream.close();
    }

    @Test
    void aPasswordFromTheEnvironment() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir).password(PASSWORD).start();
        closeAfter.add(redis);
        final String store = "{ uri: '" + redis.uri() + "', password: '${REDIS_PASSWORD}' }";
        final Map<String, String> env = Map.of("REDIS_PASSWORD", PASSWORD);

        final RunningProxy a = proxy("a", store, env);
        final RunningProxy b = proxy("b", store, env);

        assertSharedRateAndPubSub(a, b);
        assertThat(redis.command("KEYS wsguard:hs:shared:*")).isNotEmpty();
    }

    @Test
    void withoutThePasswordRedisRefusesAndOnUnavailableDecides() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir).password(PASSWORD).start();
        closeAfter.add(redis);
        final RunningProxy proxy = proxy(
                "nopw",
                "{ uri: '" + redis.uri() + "', password: '${REDIS_PASSWORD}' }",
                Map.of("REDIS_PASSWORD", "wrong"));

        await().atMost(Duration.ofSeconds(10))
                .until(() -> redis(proxy).lastFailure().contains("WRONGPASS"));
        assertThat(redis(proxy).available()).isFalse();
        assertThat(redis(proxy).lastFailure()).doesNotContain("wrong");
        // local: the instance's own buckets decide.
        final String client = nextClient();
        assertThat(status(proxy, client)).isEqualTo(101);
        assertThat(status(proxy, client)).isEqualTo(101);
        assertThat(status(proxy, client)).isEqualTo(429);
        assertThat(fallbacks(proxy)).isPositive();
        assertThat(redis.command("KEYS wsguard:*")).isEmpty();
    }

    @Test
    void redissWithTheCaFileOfThePolicy() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "redis-ca");
        final TestCerts.Issued cert = ca.issue(
                dir, "redis", List.of("localhost", "127.0.0.1"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final RedisServer redis = RedisServer.onFreePort(dir)
                .tls(cert.certificate(), cert.privateKey(), ca.certificatePath())
                .start();
        closeAfter.add(redis);
        final String store = "{ uri: '" + redis.tlsUri() + "', caFile: " + ca.certificatePath() + " }";

        final RunningProxy a = proxy("a", store, Map.of());
        final RunningProxy b = proxy("b", store, Map.of());

        assertSharedRateAndPubSub(a, b);
    }

    @Test
    void redissRefusesAServerOutsideTheCaFile() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "redis-ca");
        final TestCerts.Authority other = TestCerts.authority(dir, "other-ca");
        final TestCerts.Issued cert =
                ca.issue(dir, "redis", List.of("127.0.0.1"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final RedisServer redis = RedisServer.onFreePort(dir)
                .tls(cert.certificate(), cert.privateKey(), ca.certificatePath())
                .start();
        closeAfter.add(redis);

        final RunningProxy proxy = proxy(
                "untrusted", "{ uri: '" + redis.tlsUri() + "', caFile: " + other.certificatePath() + " }", Map.of());

        await().atMost(Duration.ofSeconds(10))
                .until(() -> !redis(proxy).lastFailure().equals("not connected yet"));
        Thread.sleep(1500); // a few more connection attempts (one a second): none may succeed
        assertThat(redis(proxy).connected()).isFalse();
        assertThat(redis(proxy).lastFailure()).containsIgnoringCase("certif");
    }

    @Test
    void sentinel() throws Exception {
        final RedisSentinelGroup group = RedisSentinelGroup.start(dir);
        closeAfter.add(group);
        final String store = "{ uri: '" + group.uri() + "' }";

        final RunningProxy a = proxy("a", store, Map.of());
        final RunningProxy b = proxy("b", store, Map.of());

        assertSharedRateAndPubSub(a, b);
        assertThat(group.master().command("KEYS wsguard:hs:shared:*")).isNotEmpty();
    }

    @Test
    void sentinelWithAPasswordFollowsAFailover() throws Exception {
        final RedisSentinelGroup group = RedisSentinelGroup.start(dir, PASSWORD);
        closeAfter.add(group);
        final String store = "{ uri: '" + group.uri() + "', password: '${REDIS_PASSWORD}' }";
        final Map<String, String> env = Map.of("REDIS_PASSWORD", PASSWORD);
        final RunningProxy a = proxy("a", store, env);
        final RunningProxy b = proxy("b", store, env);
        assertSharedRateAndPubSub(a, b);

        group.failover();

        // Each store reconnects through the sentinel to the promoted replica, and shares again.
        for (RunningProxy proxy : List.of(a, b)) {
            awaitDecidedByRedis(proxy);
        }
        assertSharedRateAndPubSub(a, b);
        assertThat(group.replica().command("KEYS wsguard:hs:shared:*")).isNotEmpty();
    }

    @Test
    void redisCluster() throws Exception {
        final RedisClusterNodes cluster = RedisClusterNodes.start(dir);
        closeAfter.add(cluster);
        final String store = "{ uri: '" + cluster.seedUri() + "', cluster: true }";

        final RunningProxy a = proxy("a", store, Map.of());
        final RunningProxy b = proxy("b", store, Map.of());

        assertSharedRateAndPubSub(a, b);
        // The bucket keys spread over the nodes (each client's key hashes to its own slot).
        int keys = 0;
        for (RedisServer node : cluster.nodes()) {
            keys += node.command("KEYS wsguard:hs:shared:*").size();
        }
        assertThat(keys).isGreaterThanOrEqualTo(1);
    }

    // --------------------------------------------------------------------------------------------

    /**
     * Two handshakes for a new client through each of {@code a} and {@code b}: the burst of 2 is
     * spent across both, so the third, on either, is refused, and nothing fell back. Then a message
     * published through {@code b}'s store reaches a subscriber on {@code a}'s.
     */
    private void assertSharedRateAndPubSub(RunningProxy a, RunningProxy b) throws Exception {
        await().atMost(Duration.ofSeconds(15)).until(() -> redis(a).available() || redis(a).connected());
        await().atMost(Duration.ofSeconds(15)).until(() -> redis(b).available() || redis(b).connected());
        awaitDecidedByRedis(a);
        awaitDecidedByRedis(b);
        final double fallbacksBefore = fallbacks(a) + fallbacks(b);
        final String client = nextClient();
        final int before = upstream.upgrades();
        final String why = "fallbacks %s/%s, last failures: %s / %s";
        assertThat(status(a, client)).isEqualTo(101);
        assertThat(status(b, client)).isEqualTo(101);
        assertThat(status(a, client))
                .as(why, fallbacks(a), fallbacks(b), redis(a).lastFailure(), redis(b).lastFailure())
                .isEqualTo(429);
        assertThat(status(b, client))
                .as(why, fallbacks(a), fallbacks(b), redis(a).lastFailure(), redis(b).lastFailure())
                .isEqualTo(429);
        assertThat(upstream.upgrades()).isEqualTo(before + 2);
        assertThat(fallbacks(a) + fallbacks(b)).isEqualTo(fallbacksBefore);
        assertThat(b.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "handshake_rate")
                .containsEntry("client", client)
                .containsEntry("status", 429));

        final String channel = "wsguard:test:" + client;
        final LinkedBlockingQueue<String> received = new LinkedBlockingQueue<>();
        redis(a).subscribe(channel, received::add);
        // The subscription is made asynchronously: publish until it arrives. (PUBLISH's count is no
        // help: in a Redis Cluster it counts only the subscribers on the node that took it.)
        await().atMost(Duration.ofSeconds(15))
                .pollInterval(Duration.ofMillis(10))
                .until(() -> {
                    redis(b).publish(null, channel, "hello " + client)
                            .toCompletableFuture()
                            .get(5, TimeUnit.SECONDS);
                    return received.poll(200, TimeUnit.MILLISECONDS) != null;
                });
        assertThat(received).allMatch(("hello " + client)::equals);
    }

    private RunningProxy proxy(String name, String redisYaml, Map<String, String> env) throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name + "-" + NEXT_CLIENT.get()));
        final RunningProxy proxy = RunningProxy.start(
                PolicyText.in(own)
                        .routes("""
                        - name: shared
                          match: { path: /s }
                          upstream: { targets: [%s] }
                          auth: none
                          limits: { handshakes: { perIp: { rate: 1/h, burst: 2 } } }
                        """.formatted(upstream.uri("/echo")))
                        .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n" + "rateLimitStore: { type: redis, redis: "
                                + redisYaml + " }\n"),
                env);
        closeAfter.add(proxy);
        return proxy;
    }

    private static RedisStore redis(RunningProxy proxy) {
        return proxy.server().redis();
    }

    /** Until a handshake (from a fresh client) is decided without a fallback. */
    private static void awaitDecidedByRedis(RunningProxy proxy) {
        await().atMost(Duration.ofSeconds(30))
                .pollInterval(Duration.ofMillis(200))
                .until(() -> {
                    final double before = fallbacks(proxy);
                    status(proxy, nextClient());
                    return fallbacks(proxy) == before;
                });
    }

    /** Every fallback of every shared feature: one series per feature. */
    private static double fallbacks(RunningProxy proxy) {
        return proxy.server().metrics().registry().find("wsguard.ratelimit.store.fallbacks").counters().stream()
                .mapToDouble(Counter::count)
                .sum();
    }

    private static String nextClient() {
        final int n = NEXT_CLIENT.getAndIncrement();
        return "198.19." + (n / 250) + "." + (n % 250 + 1);
    }

    private static int status(RunningProxy proxy, String client) throws Exception {
        try (RawUpgrade upgrade = RawUpgrade.send(proxy.port(), "/s", Map.of("X-Forwarded-For", client))) {
            return upgrade.status();
        }
    }
}
