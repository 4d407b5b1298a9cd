package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.auth.TokenMinter;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code limits.messages.perSubject} across three wsguard processes sharing a real redis-server:
 * one subject sends through all three for 10 s, far over the rate, and what the upstream receives
 * stays within the README's bound, {@code rate x window + burst + 3 x slack}, and not far below
 * the rate. Per instance (each with its own buckets) three times the rate would pass.
 */
// About 25 s on a quiet machine; three JVMs start much slower on a busy one.
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SubjectRateClusterIT {

    private static final String SECRET = "a cluster subject-rate test secret of 32+ bytes";
    private static final int RATE = 50;
    private static final int BURST = 50;
    /** B + max(C, B) for 50/s: blocks of 25, credit 25. */
    private static final int SLACK = 50;

    @TempDir
    Path dir;

    private final List<AutoCloseable> closeAfter = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (int i = closeAfter.size() - 1; i >= 0; i--) {
            closeAfter.get(i).close();
        }
    }

    @Test
    void aSubjectsMessageRateHoldsAcrossThreeInstances() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir).start();
        closeAfter.add(redis);
        final UpstreamServer upstream = new UpstreamServer();
        closeAfter.add(upstream);
        final List<WsguardProcess> instances = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            final Path own = Files.createDirectories(dir.resolve("wsguard-" + i));
            final WsguardProcess process = WsguardProcess.start(PolicyText.in(own)
                    .routes("""
                    - name: chat
                      match: { path: /chat }
                      upstream: { targets: [%s] }
                      auth: { jwt: { algorithms: [HS256], secret: "%s" } }
                      limits: { messages: { perSubject: { rate: %d/s, burst: %d } }, onExceed: drop }
                    """.formatted(upstream.uri("/chat"), SECRET, RATE, BURST))
                    .extra("rateLimitStore: { type: redis, redis: { uri: '" + redis.uri()
                            + "', onUnavailable: deny, leaseTtl: 3s } }\n"));
            closeAfter.add(process);
            instances.add(process);
        }
        final TestClient client = new TestClient();
        closeAfter.add(client);
        final String token = TokenMinter.mint(
                TokenMinter.Options.withSecret(SECRET, "mallory", Duration.ofMinutes(5)), Clock.systemUTC());
        final List<TestClient.Recorder> sockets = new ArrayList<>();
        for (WsguardProcess process : instances) {
            sockets.add(client.connect(process.uri("/chat"), Map.of("Authorization", "Bearer " + token), List.of()));
        }

        // Up to 3 x 66 messages a second, four times the rate, for 10 s: slow enough that the three JVMs
        // keep up on a busy machine, so that the proxies decide within the window the client sends in.
        final long start = System.nanoTime();
        final long window = TimeUnit.SECONDS.toNanos(10);
        long sent = 0;
        while (System.nanoTime() - start < window) {
            for (TestClient.Recorder socket : sockets) {
                socket.send("m-" + sent++);
            }
            LockSupport.parkNanos(15_000_000);
        }
        final double seconds = (System.nanoTime() - start) / 1e9;
        // Until the upstream's count stops moving: what was still queued is decided after the send
        // loop ended, so the window the bound applies to runs until then.
        long accepted = -1;
        for (long now = countOf(upstream); now != accepted; now = countOf(upstream)) {
            accepted = now;
            Thread.sleep(1000);
        }
        final double decided = (System.nanoTime() - start) / 1e9 - 1;

        final double bound = RATE * decided + BURST + 3 * SLACK;
        // The figure the README's bound is judged by, in the failsafe output.
        System.out.printf(
                "per-subject rate across 3 instances: accepted %d of %d sent in %.1f s; bound %.0f, 80%% floor %.0f%n",
                accepted, sent, decided, bound, 0.8 * RATE * seconds);
        assertThat(sockets)
                .allSatisfy(socket -> assertThat(socket.session.isOpen()).isTrue());
        // Well over the rate even where a busy machine slows the sender down.
        assertThat(sent).isGreaterThan((long) (1.5 * RATE * seconds));
        assertThat((double) accepted)
                .as(
                        "accepted %d of %d sent in %.1f s (decided in %.1f s); bound %.0f",
                        accepted, sent, seconds, decided, bound)
                .isLessThanOrEqualTo(bound);
        assertThat((double) accepted)
                .as("accepted %d of %d sent in %.1f s", accepted, sent, seconds)
                .isGreaterThanOrEqualTo(0.8 * RATE * seconds);
        // Every instance refused some: each audited its drops.
        for (WsguardProcess process : instances) {
            process.awaitAudit("message_rate");
        }
    }

    private static long countOf(UpstreamServer upstream) {
        return upstream.messages().stream()
                .filter(m -> m instanceof String text && text.startsWith("m-"))
                .count();
    }
}
