package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Counter;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rateLimitStore.type: redis} against a real redis-server and running proxies: proxies that
 * share a Redis share {@code limits.handshakes.perIp}; while Redis is down {@code onUnavailable}
 * decides (local buckets, allow, or 503 check_failed) without a handshake waiting on Redis; when it
 * is back, sharing resumes; and a proxy starts while Redis is down.
 */
@Timeout(90)
class SharedRateLimitTest {

    private static final AtomicInteger NEXT_CLIENT = new AtomicInteger(1);

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
    void proxiesSharingARedisShareTheHandshakeRate() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local", 4);
        final RunningProxy b = proxy("b", redis, "local", 4);
        awaitConnected(a);
        awaitConnected(b);
        final String client = nextClient();
        final int before = upstream.upgrades();

        for (RunningProxy proxy : List.of(a, b, a, b)) {
            assertThat(status(proxy, client)).isEqualTo(101);
        }
        for (RunningProxy proxy : List.of(a, b)) {
            try (RawUpgrade refused = upgrade(proxy, client)) {
                assertThat(refused.status()).isEqualTo(429);
                assertThat(Long.parseLong(refused.header("Retry-After"))).isPositive();
            }
            assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                    .containsEntry("event", "blocked")
                    .containsEntry("reason", "handshake_rate")
                    .containsEntry("route", "shared")
                    .containsEntry("client", client)
                    .containsEntry("status", 429));
        }
        assertThat(upstream.upgrades()).isEqualTo(before + 4);
        assertThat(fallbacks(a) + fallbacks(b)).isZero();
        // The bucket is in Redis, under a key naming the route and its limit, and it expires.
        final List<String> keys = redis.command("KEYS wsguard:hs:shared:*" + client);
        assertThat(keys).hasSize(1);
        assertThat(Long.parseLong(redis.command("PTTL " + keys.get(0)).get(0))).isPositive();
    }

    @Test
    void whileRedisIsDownOnUnavailableDecidesAndNothingHangs() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy local = proxy("local", redis, "local", 2);
        final RunningProxy allow = proxy("allow", redis, "allow", 2);
        final RunningProxy deny = proxy("deny", redis, "deny", 2);
        for (RunningProxy proxy : List.of(local, allow, deny)) {
            awaitConnected(proxy);
        }

        redis.kill();

        // local: this instance's own buckets, the whole limit each.
        final String onLocal = nextClient();
        assertThat(timedStatus(local, onLocal)).isEqualTo(101);
        assertThat(timedStatus(local, onLocal)).isEqualTo(101);
        assertThat(timedStatus(local, onLocal)).isEqualTo(429);
        // allow: past the limit, still allowed.
        final String onAllow = nextClient();
        for (int i = 0; i < 4; i++) {
            assertThat(timedStatus(allow, onAllow)).isEqualTo(101);
        }
        // deny: 503 check_failed, not a 429 that blames the client.
        final String onDeny = nextClient();
        assertThat(timedStatus(deny, onDeny)).isEqualTo(503);
        assertThat(deny.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "check_failed")
                .containsEntry("client", onDeny)
                .containsEntry("status", 503));
        for (RunningProxy proxy : List.of(local, allow, deny)) {
            assertThat(fallbacks(proxy)).isPositive();
        }
        assertThat(local.server().metrics().scrape()).contains("wsguard_ratelimit_store_fallbacks_total");

        // Redis is back (empty): after the breaker window each proxy decides through it again.
        redis.start();
        for (RunningProxy proxy : List.of(local, allow, deny)) {
            awaitDecidedByRedis(proxy);
        }
        // Shared again: one token spent through each proxy, the third anywhere is refused.
        final String shared = nextClient();
        assertThat(timedStatus(local, shared)).isEqualTo(101);
        assertThat(timedStatus(allow, shared)).isEqualTo(101);
        assertThat(timedStatus(deny, shared)).isEqualTo(429);
        assertThat(timedStatus(local, shared)).isEqualTo(429);
    }

    @Test
    void startsWhileRedisIsDownAndUsesItOnceItIsUp() throws Exception {
        final RedisServer redis = redis(); // not started
        final RunningProxy proxy = proxy("late", redis, "local", 2);
        status(proxy, nextClient()); // warm-up: the first handshake of a new proxy loads classes
        final String client = nextClient();
        assertThat(timedStatus(proxy, client)).isEqualTo(101);
        assertThat(timedStatus(proxy, client)).isEqualTo(101);
        assertThat(timedStatus(proxy, client)).isEqualTo(429);
        assertThat(fallbacks(proxy)).isPositive();

        redis.start();
        awaitDecidedByRedis(proxy);
        final String later = nextClient();
        final double fallbacksBefore = fallbacks(proxy);
        assertThat(timedStatus(proxy, later)).isEqualTo(101);
        assertThat(timedStatus(proxy, later)).isEqualTo(101);
        assertThat(timedStatus(proxy, later)).isEqualTo(429);
        assertThat(fallbacks(proxy)).isEqualTo(fallbacksBefore);
        assertThat(redis.command("KEYS wsguard:hs:shared:*" + later)).hasSize(1);
    }

    @Test
    void aReloadMayChangeTheRateButNotTheStore() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy proxy = proxy("reload", redis, "local", 2);
        awaitConnected(proxy);
        final String client = nextClient();
        assertThat(status(proxy, client)).isEqualTo(101);
        assertThat(status(proxy, client)).isEqualTo(101);
        assertThat(status(proxy, client)).isEqualTo(429);

        final Path file = dir.resolve("reload").resolve("policy.yaml");
        final String original = Files.readString(file);
        Files.writeString(file, original.replace("onUnavailable: local", "onUnavailable: deny"));
        final io.wsguard.admin.ReloadResult refused = proxy.server().reload();
        assertThat(refused.applied()).isFalse();
        assertThat(refused.problems()).singleElement().asString().contains("rateLimitStore changed; restart wsguard");

        // A changed rate is a new bucket (its key names the limit): the client starts afresh.
        Files.writeString(file, original.replace("burst: 2", "burst: 3"));
        final io.wsguard.admin.ReloadResult applied = proxy.server().reload();
        assertThat(applied.applied()).as("%s", applied.problems()).isTrue();
        for (int i = 0; i < 3; i++) {
            assertThat(status(proxy, client)).isEqualTo(101);
        }
        assertThat(status(proxy, client)).isEqualTo(429);
        assertThat(redis.command("KEYS wsguard:hs:shared:*" + client)).hasSize(2);
    }

    // --------------------------------------------------------------------------------------------

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir);
        closeAfter.add(redis);
        return redis;
    }

    private RunningProxy proxy(String name, RedisServer redis, String onUnavailable, int burst) throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        final RunningProxy proxy = RunningProxy.start(PolicyText.in(own)
                .routes("""
                - name: shared
                  match: { path: /s }
                  upstream: { targets: [%s] }
                  auth: none
                  limits: { handshakes: { perIp: { rate: 1/h, burst: %d } } }
                """.formatted(upstream.uri("/echo"), burst))
                .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n" + "rateLimitStore: { type: redis, redis: { uri: '"
                        + redis.uri() + "', onUnavailable: " + onUnavailable + " } }\n"));
        closeAfter.add(proxy);
        return proxy;
    }

    private static void awaitConnected(RunningProxy proxy) {
        await().atMost(Duration.ofSeconds(10))
                .until(() -> proxy.server().sharedBuckets().connected());
    }

    /** Until a handshake (from a fresh client) is decided without a fallback. */
    private static void awaitDecidedByRedis(RunningProxy proxy) {
        await().atMost(Duration.ofSeconds(20))
                .pollInterval(Duration.ofMillis(200))
                .until(() -> {
                    final double before = fallbacks(proxy);
                    status(proxy, nextClient());
                    return fallbacks(proxy) == before;
                });
    }

    /** Every fallback of every shared feature: one series per feature and onUnavailable. */
    private static double fallbacks(RunningProxy proxy) {
        return proxy.server().metrics().registry().find("wsguard.ratelimit.store.fallbacks").counters().stream()
                .mapToDouble(Counter::count)
                .sum();
    }

    private static String nextClient() {
        final int n = NEXT_CLIENT.getAndIncrement();
        return "198.18." + (n / 250) + "." + (n % 250 + 1);
    }

    private static RawUpgrade upgrade(RunningProxy proxy, String client) throws Exception {
        return RawUpgrade.send(proxy.port(), "/s", Map.of("X-Forwarded-For", client));
    }

    private static int status(RunningProxy proxy, String client) throws Exception {
        try (RawUpgrade upgrade = upgrade(proxy, client)) {
            return upgrade.status();
        }
    }

    /**
     * The status, after checking the proxy answered in under a second: nothing waited on Redis
     * (Lettuce's defaults would queue the command for 60 s). Generous because CI machines are busy.
     */
    private static int timedStatus(RunningProxy proxy, String client) throws Exception {
        final long start = System.nanoTime();
        final int status = status(proxy, client);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(900);
        return status;
    }
}
