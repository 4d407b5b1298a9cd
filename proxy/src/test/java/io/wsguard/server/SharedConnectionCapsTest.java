package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Counter;
import io.wsguard.auth.TokenMinter;
import io.wsguard.cluster.ConnectionLeases;
import io.wsguard.cluster.RedisStore;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code limits.connections.perIp}, {@code perSubject} and {@code proxy.clusterMaxConnections} with
 * {@code rateLimitStore.type: redis}: two in-process proxies on one real redis-server share every
 * cap, exactly, even when handshakes race on both; a closed connection's slot comes back, and a
 * stopped proxy's at once; while Redis is down {@code onUnavailable} decides, and a Redis that
 * restarted empty holds every live connection again within one heartbeat.
 */
@Timeout(120)
class SharedConnectionCapsTest {

    private static final String SECRET = "a shared connection caps test secret of 32+ bytes";
    private static final AtomicInteger NEXT = new AtomicInteger(1);

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
    void perIpAndPerSubjectCapsHoldAcrossTwoInstances() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local", "");
        final RunningProxy b = proxy("b", redis, "local", "");
        awaitConnected(a, b);
        final int before = upstream.upgrades();

        // perIp: 2 over both instances.
        final String client = nextClient();
        open(a, client, nextSubject());
        open(b, client, nextSubject());
        for (RunningProxy proxy : List.of(a, b)) {
            assertThat(status(proxy, client, nextSubject())).isEqualTo(429);
            assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                    .containsEntry("event", "blocked")
                    .containsEntry("reason", "connection_limit")
                    .containsEntry("route", "caps")
                    .containsEntry("client", client)
                    .containsEntry("status", 429)
                    .containsEntry("detail", "limits.connections.perIp of 2 reached across instances"));
        }
        // perSubject: 3 over both instances, from different clients.
        final String subject = nextSubject();
        open(a, nextClient(), subject);
        open(b, nextClient(), subject);
        open(a, nextClient(), subject);
        final String fourth = nextClient();
        assertThat(status(b, fourth, subject)).isEqualTo(429);
        assertThat(b.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "connection_limit")
                .containsEntry("client", fourth)
                .containsEntry("status", 429)
                .containsEntry("detail", "limits.connections.perSubject of 3 reached across instances"));

        assertThat(upstream.upgrades()).isEqualTo(before + 5);
        assertThat(zcard(redis, ConnectionLeases.perIpKey("caps", client))).isEqualTo(2);
        assertThat(zcard(redis, ConnectionLeases.perSubjectKey("caps", subject)))
                .isEqualTo(3);
        assertThat(fallbacks(a) + fallbacks(b)).isZero();
    }

    @Test
    void fiftyConcurrentHandshakesOnTwoInstancesLetExactlyTheLastSlotsIn() throws Exception {
        final RedisServer redis = redis().start();
        // A timeout that a busy test machine meets under 50 handshakes at once: this test is about
        // the script's atomicity; what a timeout does (onUnavailable) is the outage test's.
        final RunningProxy a = proxy("a", redis, "local", "", 20, 1000, "timeout: 900ms, ");
        final RunningProxy b = proxy("b", redis, "local", "", 20, 1000, "timeout: 900ms, ");
        awaitConnected(a, b);
        final String client = nextClient();
        for (int i = 0; i < 17; i++) {
            open(i % 2 == 0 ? a : b, client, nextSubject());
        }
        final int before = upstream.upgrades();

        final ExecutorService pool = Executors.newFixedThreadPool(50);
        final CountDownLatch go = new CountDownLatch(1);
        final List<Future<RawUpgrade>> racing = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            final RunningProxy proxy = i % 2 == 0 ? a : b;
            final String subject = nextSubject();
            racing.add(pool.submit(() -> {
                go.await();
                return upgrade(proxy, client, subject);
            }));
        }
        go.countDown();
        final List<Integer> statuses = Collections.synchronizedList(new ArrayList<>());
        for (Future<RawUpgrade> future : racing) {
            final RawUpgrade upgrade = future.get(60, TimeUnit.SECONDS);
            statuses.add(upgrade.status());
            closeAfter.add(upgrade);
        }
        pool.shutdownNow();

        assertThat(fallbacks(a) + fallbacks(b)).as("decided without Redis").isZero();
        assertThat(statuses).filteredOn(s -> s == 101).hasSize(3);
        assertThat(statuses).filteredOn(s -> s == 429).hasSize(47);
        assertThat(upstream.upgrades()).isEqualTo(before + 3);
        assertThat(zcard(redis, ConnectionLeases.perIpKey("caps", client))).isEqualTo(20);
        final long audited = a.auditLines().stream()
                        .filter(line ->
                                client.equals(line.get("client")) && "connection_limit".equals(line.get("reason")))
                        .count()
                + b.auditLines().stream()
                        .filter(line ->
                                client.equals(line.get("client")) && "connection_limit".equals(line.get("reason")))
                        .count();
        // The audit log sums repeated lines of one client within a second; every refusal is in some line.
        assertThat(audited).isPositive();
        assertThat(blocked(a) + blocked(b)).isEqualTo(47);
    }

    @Test
    void aClosedConnectionsSlotComesBackOnTheOtherInstance() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local", "");
        final RunningProxy b = proxy("b", redis, "local", "");
        awaitConnected(a, b);
        final String client = nextClient();
        final RawUpgrade first = open(a, client, nextSubject());
        open(a, client, nextSubject());
        assertThat(status(b, client, nextSubject())).isEqualTo(429);

        first.close();
        await().atMost(Duration.ofSeconds(5)).until(() -> zcard(redis, ConnectionLeases.perIpKey("caps", client)) == 1);
        open(b, client, nextSubject());
        assertThat(status(b, client, nextSubject())).isEqualTo(429);
    }

    @Test
    void aStoppedInstanceGivesItsSlotsBackAtOnce() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local", "");
        final RunningProxy b = proxy("b", redis, "local", "");
        awaitConnected(a, b);
        final String client = nextClient();
        open(b, client, nextSubject());
        open(b, client, nextSubject());
        assertThat(status(a, client, nextSubject())).isEqualTo(429);

        b.close();
        // Not after leaseTtl: the stop released them.
        assertThat(zcard(redis, ConnectionLeases.perIpKey("caps", client))).isZero();
        open(a, client, nextSubject());
    }

    @Test
    void clusterMaxConnectionsHoldsAcrossInstances() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local", "clusterMaxConnections: 3, ", 100, 100, "");
        final RunningProxy b = proxy("b", redis, "local", "clusterMaxConnections: 3, ", 100, 100, "");
        awaitConnected(a, b);
        final int before = upstream.upgrades();
        open(a, nextClient(), nextSubject());
        open(b, nextClient(), nextSubject());
        open(a, nextClient(), nextSubject());
        final String refused = nextClient();
        assertThat(status(b, refused, nextSubject())).isEqualTo(503);
        assertThat(b.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "unavailable")
                .containsEntry("client", refused)
                .containsEntry("status", 503)
                .containsEntry("detail", "at proxy.clusterMaxConnections (3) across instances"));
        assertThat(upstream.upgrades()).isEqualTo(before + 3);
        assertThat(zcard(redis, ConnectionLeases.MAX_KEY)).isEqualTo(3);
    }

    @Test
    void whileRedisIsDownOnUnavailableDecides() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy local = proxy("local", redis, "local", "");
        final RunningProxy allow = proxy("allow", redis, "allow", "");
        final RunningProxy deny = proxy("deny", redis, "deny", "");
        awaitConnected(local, allow, deny);
        final String onLocal = nextClient();
        open(local, onLocal, nextSubject());

        redis.kill();
        final int before = upstream.upgrades();

        // local: this instance's own count (1 held) against perIp 2.
        assertThat(timedStatus(local, onLocal)).isEqualTo(101);
        assertThat(timedStatus(local, onLocal)).isEqualTo(429);
        assertThat(local.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "connection_limit")
                .containsEntry("client", onLocal)
                .containsEntry("status", 429)
                .containsEntry("detail", "limits.connections.perIp of 2 reached"));
        // allow: no cap.
        final String onAllow = nextClient();
        for (int i = 0; i < 4; i++) {
            assertThat(timedStatus(allow, onAllow)).isEqualTo(101);
        }
        // deny: 503 check_failed, not a 429 that blames the client.
        final String onDeny = nextClient();
        assertThat(timedStatus(deny, onDeny)).isEqualTo(503);
        assertThat(deny.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "check_failed")
                .containsEntry("client", onDeny)
                .containsEntry("status", 503)
                .containsEntry(
                        "detail", "connection-cap store unavailable (rateLimitStore.redis.onUnavailable: deny)"));
        assertThat(upstream.upgrades()).isEqualTo(before + 1 + 4);
        for (RunningProxy proxy : List.of(local, allow, deny)) {
            assertThat(fallbacks(proxy)).isPositive();
        }
        assertThat(local.server().metrics().scrape())
                .contains("wsguard_ratelimit_store_fallbacks_total{feature=\"connection_limit\"");
    }

    @Test
    void aRedisThatRestartedEmptyHoldsEveryLiveConnectionAgainWithinOneHeartbeat() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local", "");
        final RunningProxy b = proxy("b", redis, "allow", "");
        awaitConnected(a, b);
        final String client = nextClient();
        open(a, client, nextSubject());
        final String offline = nextClient();

        redis.kill();
        // Admitted while Redis was down: Redis learns of these when it is back.
        open(b, client, nextSubject());
        open(b, offline, nextSubject());
        open(b, offline, nextSubject());
        open(b, offline, nextSubject());

        redis.start();
        final long started = System.nanoTime();
        final RedisStore store = a.server().redis();
        await().atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(20))
                .until(() -> zcard(redis, ConnectionLeases.perIpKey("caps", client)) == 2
                        && zcard(redis, ConnectionLeases.perIpKey("caps", offline)) == 3);
        final long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        // Lettuce reconnects within its retry delay (1 s), then the reconnect hook (or at worst the next
        // heartbeat) re-adds them; 1.5 s more for a loaded 2-core machine.
        assertThat(took).isLessThan(store.heartbeatInterval().toMillis() + 1000 + 1500);

        // The caps are Redis's again: the perIp cap holds for both, decided without a fallback.
        await().atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(200))
                .until(() -> {
                    final double fallbacks = fallbacks(a);
                    status(a, nextClient(), nextSubject());
                    return fallbacks(a) == fallbacks;
                });
        final double fallbacks = fallbacks(a) + fallbacks(b);
        assertThat(status(a, client, nextSubject())).isEqualTo(429);
        assertThat(status(a, offline, nextSubject())).isEqualTo(429);
        assertThat(fallbacks(a) + fallbacks(b)).isEqualTo(fallbacks);
    }

    // --------------------------------------------------------------------------------------------

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir);
        closeAfter.add(redis);
        return redis;
    }

    private RunningProxy proxy(String name, RedisServer redis, String onUnavailable, String proxyKeys)
            throws Exception {
        return proxy(name, redis, onUnavailable, proxyKeys, 2, 3, "");
    }

    private RunningProxy proxy(
            String name,
            RedisServer redis,
            String onUnavailable,
            String proxyKeys,
            int perIp,
            int perSubject,
            String storeKeys)
            throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        final RunningProxy proxy = RunningProxy.start(PolicyText.in(own)
                .routes("""
                - name: caps
                  match: { path: /c }
                  upstream: { targets: [%s] }
                  auth: { jwt: { algorithms: [HS256], secret: "%s" } }
                  limits: { connections: { perIp: %d, perSubject: %d } }
                """.formatted(upstream.uri("/echo"), SECRET, perIp, perSubject))
                .extra("proxy: { " + proxyKeys + "trustedProxies: [127.0.0.1/32] }\n"
                        + "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri() + "', onUnavailable: "
                        + onUnavailable + ", " + storeKeys + "leaseTtl: 3s } }\n"));
        closeAfter.add(proxy);
        return proxy;
    }

    private static void awaitConnected(RunningProxy... proxies) {
        for (RunningProxy proxy : proxies) {
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> proxy.server().redis().connected());
        }
    }

    /** Opens a connection that must be admitted; it stays open until the test ends. */
    private RawUpgrade open(RunningProxy proxy, String client, String subject) throws Exception {
        final RawUpgrade upgrade = upgrade(proxy, client, subject);
        closeAfter.add(upgrade);
        assertThat(upgrade.status()).as("upgrade of %s as %s", client, subject).isEqualTo(101);
        return upgrade;
    }

    private static RawUpgrade upgrade(RunningProxy proxy, String client, String subject) throws Exception {
        return RawUpgrade.send(
                proxy.port(), "/c", Map.of("X-Forwarded-For", client, "Authorization", "Bearer " + token(subject)));
    }

    private static int status(RunningProxy proxy, String client, String subject) throws Exception {
        try (RawUpgrade upgrade = upgrade(proxy, client, subject)) {
            return upgrade.status();
        }
    }

    /**
     * The status of a handshake that keeps its connection open when admitted, after checking the
     * proxy answered in under a second: nothing waited on Redis.
     */
    private int timedStatus(RunningProxy proxy, String client) throws Exception {
        final long start = System.nanoTime();
        final RawUpgrade upgrade = upgrade(proxy, client, nextSubject());
        closeAfter.add(upgrade);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(900);
        return upgrade.status();
    }

    private static long zcard(RedisServer redis, String key) throws Exception {
        return Long.parseLong(redis.command("ZCARD " + key).get(0));
    }

    private static double fallbacks(RunningProxy proxy) {
        final Counter counter = proxy.server()
                .metrics()
                .registry()
                .find("wsguard.ratelimit.store.fallbacks")
                .tag("feature", ConnectionLeases.FEATURE)
                .counter();
        return counter == null ? 0 : counter.count();
    }

    private static double blocked(RunningProxy proxy) {
        return proxy
                .server()
                .metrics()
                .registry()
                .find("wsguard.blocked")
                .tag("reason", "connection_limit")
                .counters()
                .stream()
                .mapToDouble(Counter::count)
                .sum();
    }

    private static String token(String subject) {
        return TokenMinter.mint(
                TokenMinter.Options.withSecret(SECRET, subject, Duration.ofMinutes(5)), Clock.systemUTC());
    }

    private static String nextClient() {
        final int n = NEXT.getAndIncrement();
        return "198.19." + (n / 250) + "." + (n % 250 + 1);
    }

    private static String nextSubject() {
        return "user-" + NEXT.getAndIncrement();
    }
}
