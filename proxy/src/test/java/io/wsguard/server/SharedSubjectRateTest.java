package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.Counter;
import io.wsguard.auth.TokenMinter;
import io.wsguard.limit.SubjectRate;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code limits.messages.perSubject} and {@code limits.bytes.perSubject} with
 * {@code rateLimitStore.type: redis}, provoked from outside through running proxies that share a
 * real redis-server: a subject's messages through two proxies count against one limit; over it,
 * 1008 with {@code message_rate} or {@code byte_rate}, the upstream never sees the refused message,
 * and the proxy that refused it audits it; with Redis down and {@code onUnavailable: deny} the
 * message is refused the same way, the audit line saying the store could not decide.
 */
@Timeout(90)
class SharedSubjectRateTest {

    private static final String SECRET = "a shared-subject-rate test secret of 32+ bytes";

    @TempDir
    Path dir;

    static UpstreamServer upstream;
    static TestClient client;

    @RegisterExtension
    final CloseAfterEach closeAfter = new CloseAfterEach();

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        upstream.close();
    }

    @Test
    void aSubjectsMessagesThroughTwoProxiesShareOneLimit() throws Exception {
        final RedisServer redis = redis();
        final String limits = "{ messages: { perSubject: { rate: 1/min, burst: 4 } } }";
        final RunningProxy a = proxy("a", redis, "deny", limits, "");
        final RunningProxy b = proxy("b", redis, "deny", limits, "");
        final Map<String, String> alice = Map.of("Authorization", "Bearer " + token("alice"));
        final TestClient.Recorder onA = client.connect(a.uri("/m"), alice, List.of());
        final UpstreamServer.Endpoint legA = upstream.newest();
        final TestClient.Recorder onB = client.connect(b.uri("/m"), alice, List.of());
        settled(a, "alice");
        settled(b, "alice");

        // The burst of 4 is spent two and two; on main, where each proxy had its own bucket, 8 would pass.
        for (int i = 0; i < 2; i++) {
            for (RunningProxy proxy : List.of(a, b)) {
                final TestClient.Recorder ws = proxy == a ? onA : onB;
                ws.send("alice-" + i);
                assertThat(ws.next()).isEqualTo("alice-" + i);
                settled(proxy, "alice");
            }
        }
        onA.send("alice-over");
        assertThat(onA.awaitClose()).isTrue();
        assertThat(onA.closeCode).isEqualTo(1008);
        assertThat(legA.awaitEnd()).isTrue();
        assertThat(upstream.messages()).doesNotContain("alice-over");
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(a.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("route", "m")
                        .containsEntry("reason", "message_rate")
                        .containsEntry("sub", "alice")
                        .containsEntry("closeCode", 1008)
                        .containsEntry("detail", "over messages.perSubject for this subject")));
        // bob's limit is his own.
        final TestClient.Recorder bob =
                client.connect(b.uri("/m"), Map.of("Authorization", "Bearer " + token("bob")), List.of());
        bob.send("bob-0");
        assertThat(bob.next()).isEqualTo("bob-0");
        assertThat(fallbacks(a) + fallbacks(b)).isZero();
        onB.session.close();
        bob.session.close();
    }

    @Test
    void overTheSharedByteRateCloses1008ByteRate() throws Exception {
        final RedisServer redis = redis();
        // 1 KiB/s: blocks of 512 bytes, credit 512; the burst of 2 KiB is spent in about five messages.
        final RunningProxy proxy = proxy(
                "bytes",
                redis,
                "deny",
                "{ bytes: { perSubject: { rate: 60KiB/min, burst: 2KiB } } }",
                "  messages: { maxSize: 1KiB }\n");
        final TestClient.Recorder ws =
                client.connect(proxy.uri("/m"), Map.of("Authorization", "Bearer " + token("carol")), List.of());
        final UpstreamServer.Endpoint leg = upstream.newest();
        final int sent = 16;
        for (int i = 0; i < sent; i++) {
            ws.send(String.format("carol-%02d-", i) + "x".repeat(500));
        }
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        final long relayed = upstream.messages().stream()
                .filter(m -> m instanceof String text && text.startsWith("carol-"))
                .count();
        // At most 2 KiB of burst, 1 KiB/s for well under a second, and 1 KiB of slack: far fewer
        // than 16. Sent back to back, faster than Redis answers a fetch: as few as a block and its credit.
        assertThat(relayed).isBetween(1L, 8L);
        // Relayed in order: the refused one and all after it never reached the upstream.
        assertThat(upstream.messages())
                .noneMatch(m -> m instanceof String text && text.startsWith(String.format("carol-%02d-", relayed)));
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("reason", "byte_rate")
                        .containsEntry("sub", "carol")
                        .containsEntry("closeCode", 1008)
                        .containsEntry("detail", "over bytes.perSubject for this subject")));
    }

    @Test
    void withRedisDownDenyRefusesTheMessageAndSaysTheStoreCouldNotDecide() throws Exception {
        final RedisServer redis = redis();
        // 10/s: blocks of 5 and a credit of 5, so the refusal below comes from the failed fetch.
        final RunningProxy proxy =
                proxy("deny", redis, "deny", "{ messages: { perSubject: { rate: 10/s, burst: 10 } } }", "");
        final TestClient.Recorder ws =
                client.connect(proxy.uri("/m"), Map.of("Authorization", "Bearer " + token("dave")), List.of());
        final UpstreamServer.Endpoint leg = upstream.newest();
        settled(proxy, "dave");
        redis.kill();

        int relayed = 0;
        for (int i = 0; i < 20 && ws.closed.getCount() > 0; i++) {
            ws.send("dave-" + i);
            if (ws.next() != null) {
                relayed++;
            }
        }
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        // What was prefetched before the outage is spent; then nothing passes.
        assertThat(relayed).isBetween(1, 10);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).doesNotContain("dave-" + relayed);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("reason", "message_rate")
                        .containsEntry("sub", "dave")
                        .containsEntry("closeCode", 1008)
                        .containsEntry(
                                "detail",
                                "messages.perSubject not checked: rate-limit store unavailable"
                                        + " (rateLimitStore.redis.onUnavailable: deny)")));
        assertThat(fallbacks(proxy)).isPositive();
    }

    // --------------------------------------------------------------------------------------------

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir).start();
        closeAfter.add(redis);
        return redis;
    }

    private RunningProxy proxy(String name, RedisServer redis, String onUnavailable, String limits, String extra)
            throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        final RunningProxy proxy = RunningProxy.start(PolicyText.in(own)
                .routes("""
                - name: m
                  match: { path: /m }
                  upstream: { targets: [%s] }
                  auth: { jwt: { algorithms: [HS256], secret: "%s" } }
                  limits: %s
                """.formatted(upstream.uri("/echo"), SECRET, limits) + extra)
                .extra("rateLimitStore: { type: redis, redis: { uri: '" + redis.uri() + "', onUnavailable: "
                        + onUnavailable + " } }\n"));
        closeAfter.add(proxy);
        await().atMost(Duration.ofSeconds(10))
                .until(() -> proxy.server().sharedBuckets().connected());
        return proxy;
    }

    /** Until no fetch of {@code subject}'s allowance is in flight on {@code proxy}. */
    private static void settled(RunningProxy proxy, String subject) {
        final var route = proxy.server().limits().route("m");
        final var limits = proxy.server().policy().policy().routes().get(0).limits();
        final List<SubjectRate> rates = new ArrayList<>();
        limits.messagesPerSubject()
                .map((RateLimitPolicy l) ->
                        route.messagesPerSubject(l, proxy.server().sharedBuckets()))
                .ifPresent(rates::add);
        limits.bytesPerSubject()
                .map((RateLimitPolicy l) ->
                        route.bytesPerSubject(l, proxy.server().sharedBuckets()))
                .ifPresent(rates::add);
        await().atMost(Duration.ofSeconds(5)).until(() -> rates.stream().noneMatch(r -> r.fetching(subject)));
    }

    private static double fallbacks(RunningProxy proxy) {
        return proxy.server().metrics().registry().find("wsguard.ratelimit.store.fallbacks").counters().stream()
                .mapToDouble(Counter::count)
                .sum();
    }

    private static String token(String subject) {
        return TokenMinter.mint(
                TokenMinter.Options.withSecret(SECRET, subject, Duration.ofMinutes(5)), Clock.systemUTC());
    }
}
