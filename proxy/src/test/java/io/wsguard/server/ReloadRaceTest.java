package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.admin.ReloadResult;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reloads during a handshake storm (README, Admin port: a reload drops nothing). A handshake reads the running
 * policy and takes it for its connection a little later; a reload in between retires that policy, and
 * once its last connection closes its upstream clients stop. The handshake must then start over on the
 * policy that replaced it, not dial through a stopped client.
 * Each reload here recompiles the same file, so every handshake has one right answer: 101 with an allowed
 * Origin, the policy's own 403 without one. Anything else failed for a reason that is not the policy's.
 */
@Timeout(300)
class ReloadRaceTest {

    /** The storm lasts until both: reloads done, and handshakes answered. */
    private static final int RELOADS = 150;

    private static final int HANDSHAKES = 1500;
    private static final int CLIENTS = 6;

    @TempDir
    Path dir;

    UpstreamServer upstream;
    RunningProxy proxy;

    @BeforeEach
    void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: storm
                  match: { path: /storm }
                  upstream: { targets: [%s] }
                  auth: none
                  origin: { allow: ["https://good.example"] }
                  limits: { connections: { perIp: 10000 } }
                """.formatted(upstream.uri("/echo"))));
    }

    @AfterEach
    void stop() throws Exception {
        UpgradeHandler.beforeAcquire = null;
        proxy.close();
        upstream.close();
    }

    /**
     * The window itself, made certain: a reload right after the handshake read the policy retires it,
     * and with nothing else using it, stops it at once. The handshake must notice and start over on the
     * new policy; taking the stopped one would dial through its stopped upstream client.
     */
    @Test
    void aReloadBetweenReadingAndTakingThePolicyStartsTheHandshakeOver() throws Exception {
        final AtomicInteger reloads = new AtomicInteger();
        final CompiledPolicy first = proxy.server().policy();
        UpgradeHandler.beforeAcquire = () -> {
            // Once: the handshake's second try must find the current policy and go through.
            if (reloads.getAndIncrement() == 0) {
                assertThat(proxy.server().reload().applied()).isTrue();
            }
        };
        try (RawUpgrade upgrade = RawUpgrade.send(proxy.port(), "/storm", Map.of("Origin", "https://good.example"))) {
            assertThat(upgrade.status()).isEqualTo(101);
        }
        assertThat(reloads.get())
                .as("the handshake ran the seam, reloaded, and tried again")
                .isEqualTo(2);
        assertThat(proxy.server().policy()).isNotSameAs(first);
        assertThat(upstream.upgrades()).as("the upstream saw the one handshake").isEqualTo(1);
    }

    @Test
    void handshakesDuringReloadsFailOnlyForThePolicy() throws Exception {
        final AtomicBoolean storming = new AtomicBoolean(true);
        final AtomicInteger accepted = new AtomicInteger();
        final AtomicInteger refusedByPolicy = new AtomicInteger();
        final ConcurrentLinkedQueue<String> otherFailures = new ConcurrentLinkedQueue<>();
        final ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        final List<Future<?>> clients = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            clients.add(pool.submit(() -> {
                for (int i = 0; storming.get(); i++) {
                    // One in eight from an Origin the route does not allow: the policy's own refusal.
                    final boolean allowed = i % 8 != 0;
                    final String origin = allowed ? "https://good.example" : "https://evil.example";
                    try (RawUpgrade upgrade = RawUpgrade.send(proxy.port(), "/storm", Map.of("Origin", origin))) {
                        if (allowed && upgrade.status() == 101) {
                            accepted.incrementAndGet();
                        } else if (!allowed && upgrade.status() == 403) {
                            refusedByPolicy.incrementAndGet();
                        } else {
                            otherFailures.add(
                                    (allowed ? "allowed" : "refused") + " origin answered " + upgrade.status());
                        }
                    } catch (IOException e) {
                        otherFailures.add((allowed ? "allowed" : "refused") + " origin: " + e);
                    }
                }
                return null;
            }));
        }
        int reloads = 0;
        try {
            while (reloads < RELOADS || accepted.get() + refusedByPolicy.get() + otherFailures.size() < HANDSHAKES) {
                final ReloadResult result = proxy.server().reload();
                assertThat(result.applied()).as("%s", result.problems()).isTrue();
                reloads++;
            }
        } finally {
            storming.set(false);
            for (Future<?> client : clients) {
                client.get();
            }
            pool.shutdown();
        }

        assertThat(refusedByPolicy.get()).as("handshakes the policy refused").isPositive();
        assertThat(otherFailures)
                .as(
                        "handshakes that failed for another reason than the policy, of %d",
                        accepted.get() + refusedByPolicy.get() + otherFailures.size())
                .isEmpty();
        // Every connection gave back what it held, under whichever policy it started.
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(proxy.server().connections().size()).isZero();
            assertThat(proxy.server().limits().route("storm").connectionsPerIp().keys())
                    .isZero();
        });
    }
}
