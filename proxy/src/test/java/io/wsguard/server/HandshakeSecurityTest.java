package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.admin.ReloadResult;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Origin allow lists, per-IP handshake rates and connection caps against a running proxy (docs/policy.md,
 * §4, §5): the status and headers the client gets, the audit line, the metrics, and that the
 * upstream never saw a refused handshake. Clients are told apart by {@code X-Forwarded-For} from
 * the trusted 127.0.0.1, so each test has addresses of its own.
 */
@Timeout(60)
class HandshakeSecurityTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: origin
                  match: { path: /origin }
                  upstream: { targets: [%1$s] }
                  auth: none
                  origin: { allow: ["https://chat.example.com", "https://*.example.com"] }
                - name: missing-ok
                  match: { path: /missing-ok }
                  upstream: { targets: [%1$s] }
                  auth: none
                  origin: { allow: ["https://chat.example.com"], allowMissing: true }
                - name: rate
                  match: { path: /rate }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { handshakes: { perIp: { rate: 1/s, burst: 3 } } }
                - name: caps
                  match: { path: /caps }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { connections: { perIp: 2 } }
                - name: crowd
                  match: { path: /crowd }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { connections: { perIp: 10 } }
                - name: dead
                  match: { path: /dead }
                  upstream: { targets: ["ws://127.0.0.1:1/nothing"], connectTimeout: 2s }
                  auth: none
                  limits: { connections: { perIp: 1 } }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: [%1$s] }
                  auth: none
                  origin: { allow: ["https://good.example"] }
                  limits: { handshakes: { perIp: { rate: 1/h, burst: 1 } }, connections: { perIp: 1 } }
                """.formatted(upstream.uri("/echo")))
                .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n"));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    private static RawUpgrade upgrade(String path, String clientIp, String origin) throws Exception {
        return RawUpgrade.send(
                proxy.port(),
                path,
                origin == null
                        ? Map.of("X-Forwarded-For", clientIp)
                        : Map.of("X-Forwarded-For", clientIp, "Origin", origin));
    }

    private static String metrics() {
        return proxy.server().metrics().scrape();
    }

    // --- origin ---------------------------------------------------------------------------------

    @Test
    void allowedOriginsConnectAndEcho() throws Exception {
        for (String origin :
                List.of("https://chat.example.com", "https://a.b.example.com", "https://CHAT.example.com:443")) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/origin"), Map.of("Origin", origin), List.of());
            ws.send("hi from " + origin);
            assertThat(ws.next()).isEqualTo("hi from " + origin);
            ws.session.close();
        }
    }

    @Test
    void foreignOriginIs403AuditedAndNeverReachesTheUpstream() throws Exception {
        final int before = upstream.upgrades();
        for (String origin : List.of(
                "https://evil-example.com",
                "https://example.com",
                "https://a.example.com.evil.net",
                "http://chat.example.com",
                "null",
                "https://chat.example.com/")) {
            try (RawUpgrade refused = upgrade("/origin", "198.51.100.1", origin)) {
                assertThat(refused.status()).as(origin).isEqualTo(403);
            }
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", "origin_denied")
                .containsEntry("route", "origin")
                .containsEntry("client", "198.51.100.1")
                .containsEntry("origin", "https://evil-example.com")
                .containsEntry("status", 403));
        assertThat(metrics())
                .contains("wsguard_blocked_total{reason=\"origin_denied\",route=\"origin\"}")
                .contains("wsguard_handshakes_total{outcome=\"origin_denied\",route=\"origin\"}");
    }

    @Test
    void missingOriginIs403UnlessAllowed() throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused = upgrade("/origin", "198.51.100.2", null)) {
            assertThat(refused.status()).isEqualTo(403);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "origin_missing")
                .containsEntry("route", "origin")
                .containsEntry("client", "198.51.100.2")
                .containsEntry("status", 403));

        try (RawUpgrade allowed = upgrade("/missing-ok", "198.51.100.2", null)) {
            assertThat(allowed.status()).isEqualTo(101);
        }
        try (RawUpgrade refused = upgrade("/missing-ok", "198.51.100.2", "https://other.example.com")) {
            assertThat(refused.status()).isEqualTo(403);
        }
    }

    // --- handshake rate -------------------------------------------------------------------------

    @Test
    void handshakesPastTheBurstGet429WithRetryAfterUntilTheBucketRefills() throws Exception {
        final int before = upstream.upgrades();
        for (int i = 0; i < 3; i++) {
            try (RawUpgrade ok = upgrade("/rate", "203.0.113.10", null)) {
                assertThat(ok.status()).isEqualTo(101);
            }
        }
        final long refusedAt = System.nanoTime();
        try (RawUpgrade refused = upgrade("/rate", "203.0.113.10", null)) {
            assertThat(refused.status()).isEqualTo(429);
            assertThat(Long.parseLong(refused.header("Retry-After"))).isBetween(1L, 1L);
        }
        assertThat(upstream.upgrades()).isEqualTo(before + 3);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "handshake_rate")
                .containsEntry("route", "rate")
                .containsEntry("client", "203.0.113.10")
                .containsEntry("status", 429));
        assertThat(metrics()).contains("wsguard_blocked_total{reason=\"handshake_rate\",route=\"rate\"}");

        // Another client has its own bucket.
        try (RawUpgrade other = upgrade("/rate", "203.0.113.11", null)) {
            assertThat(other.status()).isEqualTo(101);
        }
        // One token a second: after a second the first client may try again.
        final long waitNanos = TimeUnit.SECONDS.toNanos(1) - (System.nanoTime() - refusedAt);
        if (waitNanos > 0) {
            TimeUnit.NANOSECONDS.sleep(waitNanos + TimeUnit.MILLISECONDS.toNanos(50));
        }
        try (RawUpgrade again = upgrade("/rate", "203.0.113.10", null)) {
            assertThat(again.status()).isEqualTo(101);
        }
    }

    @Test
    void ipv6ClientsShareTheirSlash64() throws Exception {
        for (int i = 1; i <= 3; i++) {
            try (RawUpgrade ok = upgrade("/rate", "2001:db8:7:7::" + i, null)) {
                assertThat(ok.status()).isEqualTo(101);
            }
        }
        try (RawUpgrade refused = upgrade("/rate", "2001:db8:7:7:ffff::99", null)) {
            assertThat(refused.status()).isEqualTo(429);
        }
        try (RawUpgrade neighbour = upgrade("/rate", "2001:db8:7:8::1", null)) {
            assertThat(neighbour.status()).isEqualTo(101);
        }
    }

    // --- connection caps ------------------------------------------------------------------------

    @Test
    void thirdConcurrentConnectionIs429AndASlotComesBackWhenOneCloses() throws Exception {
        final int before = upstream.upgrades();
        final RawUpgrade a = upgrade("/caps", "192.0.2.20", null);
        final RawUpgrade b = upgrade("/caps", "192.0.2.20", null);
        assertThat(a.status()).isEqualTo(101);
        assertThat(b.status()).isEqualTo(101);
        try (RawUpgrade third = upgrade("/caps", "192.0.2.20", null)) {
            assertThat(third.status()).isEqualTo(429);
            assertThat(third.header("Retry-After")).isEqualTo("5");
        }
        assertThat(upstream.upgrades()).isEqualTo(before + 2);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "connection_limit")
                .containsEntry("route", "caps")
                .containsEntry("client", "192.0.2.20")
                .containsEntry("status", 429));
        assertThat(metrics()).contains("wsguard_handshakes_total{outcome=\"connection_limit\",route=\"caps\"}");
        // Another client is not affected.
        try (RawUpgrade other = upgrade("/caps", "192.0.2.21", null)) {
            assertThat(other.status()).isEqualTo(101);
        }

        a.close();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            try (RawUpgrade next = upgrade("/caps", "192.0.2.20", null)) {
                assertThat(next.status()).isEqualTo(101);
            }
        });
        b.close();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(
                        proxy.server().limits().route("caps").connectionsPerIp().count("192.0.2.20"))
                .isZero());
    }

    @Test
    void aSlotComesBackWhenTheUpstreamCannotBeReached() throws Exception {
        for (int i = 0; i < 3; i++) {
            try (RawUpgrade failed = upgrade("/dead", "192.0.2.30", null)) {
                // perIp is 1: a slot kept by the first failure would make the next one a 429.
                assertThat(failed.status()).isEqualTo(502);
            }
        }
        assertThat(proxy.server().limits().route("dead").connectionsPerIp().count("192.0.2.30"))
                .isZero();
    }

    @Test
    void concurrentHandshakesNeverOvershootTheCap() throws Exception {
        final int before = upstream.upgrades();
        final ExecutorService pool = Executors.newFixedThreadPool(8);
        final ConcurrentLinkedQueue<RawUpgrade> results = new ConcurrentLinkedQueue<>();
        try {
            final CountDownLatch go = new CountDownLatch(1);
            final List<Future<?>> tasks = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                tasks.add(pool.submit(() -> {
                    go.await();
                    results.add(upgrade("/crowd", "192.0.2.40", null));
                    return null;
                }));
            }
            go.countDown();
            for (Future<?> task : tasks) {
                task.get(30, TimeUnit.SECONDS);
            }
            assertThat(results.stream().filter(r -> r.status() == 101).count()).isEqualTo(10);
            assertThat(results.stream().filter(r -> r.status() == 429).count()).isEqualTo(40);
            assertThat(upstream.upgrades()).isEqualTo(before + 10);
            assertThat(proxy.server().limits().route("crowd").connectionsPerIp().count("192.0.2.40"))
                    .isEqualTo(10);
        } finally {
            pool.shutdownNow();
            for (RawUpgrade r : results) {
                r.close();
            }
        }
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(proxy.server()
                        .limits()
                        .route("crowd")
                        .connectionsPerIp()
                        .keys())
                .isZero());
    }

    // --- monitor mode ---------------------------------------------------------------------------

    @Test
    void monitorModeAuditsEveryWouldBeRefusalAndBlocksNothing() throws Exception {
        final TestClient.Recorder first = client.connect(
                proxy.uri("/watch"),
                Map.of("Origin", "https://evil.example", "X-Forwarded-For", "192.0.2.50"),
                List.of());
        final TestClient.Recorder second = client.connect(
                proxy.uri("/watch"),
                Map.of("Origin", "https://evil.example", "X-Forwarded-For", "192.0.2.50"),
                List.of());
        second.send("still relayed");
        assertThat(second.next()).isEqualTo("still relayed");

        final List<Map<String, Object>> lines = proxy.auditLines().stream()
                .filter(line -> "watch".equals(line.get("route")))
                .toList();
        assertThat(lines).allSatisfy(line -> assertThat(line)
                .containsEntry("event", "monitored")
                .containsEntry("action", "none")
                .containsEntry("status", null));
        assertThat(lines)
                .extracting(line -> line.get("reason"))
                .contains("origin_denied", "handshake_rate", "connection_limit");
        assertThat(metrics()).contains("wsguard_blocked_total{reason=\"connection_limit\",route=\"watch\"}");

        // Only the first connection holds a slot; the monitored deny took none and left no lease.
        assertThat(proxy.server().limits().route("watch").connectionsPerIp().count("192.0.2.50"))
                .isEqualTo(1);
        second.session.close();
        first.session.close();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(proxy.server()
                        .limits()
                        .route("watch")
                        .connectionsPerIp()
                        .count("192.0.2.50"))
                .isZero());
    }

    // --- reload ---------------------------------------------------------------------------------

    @Test
    void aReloadKeepsCountingTheConnectionsOpenedBeforeIt(@TempDir Path reloadDir) throws Exception {
        final String routes = """
                - name: caps
                  match: { path: /caps }
                  upstream: { targets: [%s] }
                  auth: none
                  limits: { connections: { perIp: 2 } }
                  messages: { maxSize: 1KiB }
                """.formatted(upstream.uri("/echo"));
        try (RunningProxy own = RunningProxy.start(PolicyText.in(reloadDir).routes(routes))) {
            final RawUpgrade a = RawUpgrade.send(own.port(), "/caps", Map.of());
            final RawUpgrade b = RawUpgrade.send(own.port(), "/caps", Map.of());
            assertThat(a.status()).isEqualTo(101);
            assertThat(b.status()).isEqualTo(101);

            final Path file = reloadDir.resolve("policy.yaml");
            Files.writeString(file, Files.readString(file).replace("maxSize: 1KiB", "maxSize: 2KiB"));
            final ReloadResult result = own.server().reload();
            assertThat(result.applied()).as("%s", result.problems()).isTrue();
            try (RawUpgrade third = RawUpgrade.send(own.port(), "/caps", Map.of())) {
                assertThat(third.status()).isEqualTo(429);
            }

            // The new cap applies to the same count.
            Files.writeString(file, Files.readString(file).replace("perIp: 2", "perIp: 3"));
            assertThat(own.server().reload().applied()).isTrue();
            try (RawUpgrade third = RawUpgrade.send(own.port(), "/caps", Map.of())) {
                assertThat(third.status()).isEqualTo(101);
            }
            a.close();
            b.close();
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(own.server()
                            .limits()
                            .route("caps")
                            .connectionsPerIp()
                            .keys())
                    .isZero());
        }
    }
}
