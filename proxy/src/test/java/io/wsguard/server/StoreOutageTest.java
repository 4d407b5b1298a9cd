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
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
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
 * The shared store's outages as an operator sees them: one {@code store_unavailable} audit line per
 * outage and instance (however many decisions fell back), one {@code store_available} when Redis
 * answers again, {@code /readyz} still 200 with a body naming the degraded store, the fallbacks in
 * {@code /metrics} by feature; and neither a dead Redis nor a hung one (SIGSTOP: its sockets stay
 * open, nothing answers) makes a handshake wait longer than the store's {@code timeout}.
 */
@Timeout(120)
class StoreOutageTest {

    private static final AtomicInteger NEXT_CLIENT = new AtomicInteger(1);
    /** Short, so that waiting for it shows in a handshake's time; the default is 200ms. */
    private static final Duration TIMEOUT = Duration.ofMillis(300);
    /**
     * What a handshake may take beyond the timeout: the handshake itself and a busy test machine.
     * Lettuce's own default would queue the command for 60 s.
     */
    private static final Duration SLACK = Duration.ofMillis(450);

    @TempDir
    Path dir;

    static UpstreamServer upstream;

    @RegisterExtension
    final CloseAfterEach closeAfter = new CloseAfterEach();

    private final HttpClient http = HttpClient.newHttpClient();

    @BeforeAll
    static void startUpstream() throws Exception {
        upstream = new UpstreamServer();
    }

    @AfterAll
    static void stopUpstream() throws Exception {
        upstream.close();
    }

    @Test
    void anOutageIsAuditedOncePerInstanceAndReadyzNamesTheDegradedStore() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis, "local");
        final RunningProxy b = proxy("b", redis, "deny");
        for (RunningProxy proxy : List.of(a, b)) {
            awaitDecidedByRedis(proxy);
            assertThat(get(proxy, "/readyz")).isEqualTo("200 ready");
        }

        redis.kill();
        for (int i = 0; i < 5; i++) {
            status(a, nextClient());
            status(b, nextClient());
            Thread.sleep(300);
        }

        for (RunningProxy proxy : List.of(a, b)) {
            final String mode = proxy == a ? "local" : "deny";
            assertThat(storeLines(proxy, "store_unavailable")).singleElement().satisfies(line -> assertThat(line)
                    .containsEntry("event", "store")
                    .containsEntry("stage", "store")
                    .containsEntry("client", null)
                    .containsEntry("count", 1)
                    .hasEntrySatisfying("detail", detail -> assertThat((String) detail)
                            .startsWith("redis at 127.0.0.1:" + redis.port() + " unavailable (")
                            .endsWith("shared features decide as onUnavailable: " + mode)));
            assertThat(storeLines(proxy, "store_available")).isEmpty();
            // Still ready: the balancer keeps sending traffic, which the instance decides alone.
            assertThat(get(proxy, "/readyz"))
                    .startsWith(
                            "200 ready, degraded: shared store redis at 127.0.0.1:" + redis.port() + " unavailable (")
                    .endsWith("shared features decide as onUnavailable: " + mode);
            assertThat(fallbacks(proxy)).isGreaterThanOrEqualTo(5);
            assertThat(get(proxy, "/metrics"))
                    .contains("wsguard_ratelimit_store_fallbacks_total{feature=\"handshake_rate\",onUnavailable=\""
                            + mode + "\"}");
        }
        // deny: the fallback refuses, and says so per handshake.
        assertThat(b.auditLines())
                .anySatisfy(line ->
                        assertThat(line).containsEntry("reason", "check_failed").containsEntry("status", 503));

        redis.start();
        for (RunningProxy proxy : List.of(a, b)) {
            awaitDecidedByRedis(proxy);
            assertThat(storeLines(proxy, "store_available")).singleElement().satisfies(line -> assertThat(line)
                    .containsEntry("event", "store")
                    .containsEntry(
                            "detail",
                            "redis at 127.0.0.1:" + redis.port()
                                    + " answers again; shared features decide through it"));
            assertThat(get(proxy, "/readyz")).isEqualTo("200 ready");
        }

        // A second outage is a second line.
        redis.kill();
        for (RunningProxy proxy : List.of(a, b)) {
            await().atMost(Duration.ofSeconds(10))
                    .pollInterval(Duration.ofMillis(200))
                    .until(() -> {
                        status(proxy, nextClient());
                        return storeLines(proxy, "store_unavailable").size() == 2;
                    });
        }
    }

    @Test
    void aHungRedisCostsAHandshakeAtMostTheTimeout() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy proxy = proxy("hung", redis, "local");
        awaitDecidedByRedis(proxy);
        final long up = slowest(proxy, 10);

        redis.pause();
        try {
            // Long enough to cross the breaker's window twice: each probe meets the hung Redis.
            final long[] times = timedHandshakes(proxy, Duration.ofSeconds(5));
            final long slowest = max(times);
            System.out.printf(
                    "hung Redis (SIGSTOP), timeout %d ms: %d handshakes, slowest %d ms (with Redis up: %d ms)%n",
                    TIMEOUT.toMillis(), times.length, slowest, up);
            assertThat(slowest).isLessThan(TIMEOUT.plus(SLACK).toMillis());
            // The probes did wait for Redis: the bound above is the timeout's, not luck.
            assertThat(slowest).isGreaterThanOrEqualTo(TIMEOUT.toMillis() - 20);
            assertThat(redis(proxy).lastFailure()).contains("Timeout");
            assertThat(storeLines(proxy, "store_unavailable")).hasSize(1);
        } finally {
            redis.resume();
        }
        awaitDecidedByRedis(proxy);
        assertThat(storeLines(proxy, "store_available")).hasSize(1);
    }

    @Test
    void aDeadRedisCostsAHandshakeAtMostTheTimeout() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy proxy = proxy("dead", redis, "local");
        awaitDecidedByRedis(proxy);

        redis.kill();
        final long[] times = timedHandshakes(proxy, Duration.ofSeconds(5));
        final long slowest = max(times);
        System.out.printf(
                "dead Redis (SIGKILL), timeout %d ms: %d handshakes, slowest %d ms%n",
                TIMEOUT.toMillis(), times.length, slowest);
        assertThat(slowest).isLessThan(TIMEOUT.plus(SLACK).toMillis());
        assertThat(storeLines(proxy, "store_unavailable")).hasSize(1);
    }

    // --------------------------------------------------------------------------------------------

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir);
        closeAfter.add(redis);
        return redis;
    }

    private RunningProxy proxy(String name, RedisServer redis, String onUnavailable) throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        final RunningProxy proxy = RunningProxy.start(PolicyText.in(own)
                .routes("""
                - name: shared
                  match: { path: /s }
                  upstream: { targets: [%s] }
                  auth: none
                  limits: { handshakes: { perIp: { rate: 1/h, burst: 100 } } }
                """.formatted(upstream.uri("/echo")))
                .extra("admin: { host: 127.0.0.1, port: 0 }\n"
                        + "proxy: { trustedProxies: [127.0.0.1/32] }\n"
                        + "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri() + "', onUnavailable: "
                        + onUnavailable + ", timeout: " + TIMEOUT.toMillis() + "ms } }\n"));
        closeAfter.add(proxy);
        return proxy;
    }

    private static io.wsguard.cluster.RedisStore redis(RunningProxy proxy) {
        return proxy.server().redis();
    }

    /** The handshakes' times in ms, one after another for {@code during}, each from a fresh client. */
    private static long[] timedHandshakes(RunningProxy proxy, Duration during) throws Exception {
        final List<Long> times = new ArrayList<>();
        final long end = System.nanoTime() + during.toNanos();
        while (System.nanoTime() - end < 0) {
            final long start = System.nanoTime();
            status(proxy, nextClient());
            times.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
            Thread.sleep(50);
        }
        return times.stream().mapToLong(Long::longValue).toArray();
    }

    private static long slowest(RunningProxy proxy, int handshakes) throws Exception {
        long slowest = 0;
        for (int i = 0; i < handshakes; i++) {
            final long start = System.nanoTime();
            status(proxy, nextClient());
            slowest = Math.max(slowest, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        }
        return slowest;
    }

    private static long max(long[] values) {
        long max = 0;
        for (long value : values) {
            max = Math.max(max, value);
        }
        return max;
    }

    private static List<Map<String, Object>> storeLines(RunningProxy proxy, String reason) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> reason.equals(line.get("reason")))
                .toList();
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

    private static double fallbacks(RunningProxy proxy) {
        return proxy.server().metrics().registry().find("wsguard.ratelimit.store.fallbacks").counters().stream()
                .mapToDouble(Counter::count)
                .sum();
    }

    private String get(RunningProxy proxy, String path) throws Exception {
        final HttpResponse<String> response = http.send(
                HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + path))
                        .timeout(Duration.ofSeconds(5))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return response.statusCode() + " " + response.body();
    }

    private static String nextClient() {
        final int n = NEXT_CLIENT.getAndIncrement();
        return "198.20." + (n / 250) + "." + (n % 250 + 1);
    }

    private static int status(RunningProxy proxy, String client) throws Exception {
        try (RawUpgrade upgrade = RawUpgrade.send(proxy.port(), "/s", Map.of("X-Forwarded-For", client))) {
            return upgrade.status();
        }
    }
}
