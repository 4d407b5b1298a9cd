package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three wsguard processes on one redis-server share {@code limits.connections.perIp}: the cap holds
 * across all three, and the slots of an instance killed with SIGKILL (no chance to give them back)
 * free within {@code leaseTtl}.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ConnectionCapsIT {

    private static final String CLIENT = "198.51.100.7";
    private static final long LEASE_TTL_MS = 3000;

    @TempDir
    Path dir;

    private final List<AutoCloseable> closeAfter = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = closeAfter.size() - 1; i >= 0; i--) {
            closeAfter.get(i).close();
        }
    }

    @Test
    void theCapHoldsAcrossThreeInstancesAndAKilledOnesSlotsFreeWithinLeaseTtl() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir).start();
        closeAfter.add(redis);
        final UpstreamServer upstream = new UpstreamServer();
        closeAfter.add(upstream);
        final List<WsguardProcess> instances = new ArrayList<>();
        for (String name : List.of("one", "two", "three")) {
            final WsguardProcess instance =
                    WsguardProcess.start(PolicyText.in(Files.createDirectories(dir.resolve(name)))
                            .routes("""
                    - name: caps
                      match: { path: /c }
                      upstream: { targets: [%s] }
                      auth: none
                      limits: { connections: { perIp: 4 } }
                    """.formatted(upstream.uri("/echo")))
                            .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n"
                                    + "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri()
                                    + "', leaseTtl: 3s } }\n"));
            closeAfter.add(instance);
            instances.add(instance);
        }
        final WsguardProcess one = instances.get(0);
        final WsguardProcess two = instances.get(1);
        final WsguardProcess three = instances.get(2);
        for (WsguardProcess instance : instances) {
            awaitAdmittedByRedis(redis, instance);
        }

        // 4 across the three: one on each of the first two, two on the third.
        open(one);
        open(two);
        open(three);
        open(three);
        final int upgrades = upstream.upgrades();
        for (WsguardProcess instance : instances) {
            assertThat(status(instance)).isEqualTo(429);
            assertThat(instance.awaitAudit(
                            line -> "connection_limit".equals(line.get("reason"))
                                    && CLIENT.equals(line.get("client"))
                                    && Integer.valueOf(429).equals(line.get("status")),
                            "connection_limit for " + CLIENT))
                    .containsEntry("detail", "limits.connections.perIp of 4 reached across instances");
        }
        assertThat(upstream.upgrades()).isEqualTo(upgrades);

        // kill -9: the third cannot give its two slots back; they expire within leaseTtl.
        three.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        final long killed = System.nanoTime();
        // Kept open when admitted: the second is admitted only once both of the dead instance's slots are gone.
        int reclaimed = 0;
        while (reclaimed < 2) {
            final RawUpgrade probe = RawUpgrade.send(one.port(), "/c", Map.of("X-Forwarded-For", CLIENT));
            closeAfter.add(probe);
            if (probe.status() == 101) {
                reclaimed++;
                continue;
            }
            assertThat(probe.status()).isEqualTo(429);
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed))
                    .as("the killed instance's slots free within leaseTtl")
                    .isLessThan(LEASE_TTL_MS + 500);
            Thread.sleep(50);
        }
        final long freedAfter = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
        // 4 held again, by the two that live: the cap still holds on both.
        assertThat(status(one)).isEqualTo(429);
        assertThat(status(two)).isEqualTo(429);
        System.out.printf("killed instance's slots freed after %d ms (leaseTtl %d ms)%n", freedAfter, LEASE_TTL_MS);
    }

    /** Until one handshake of another client has gone through Redis (the store connects in the background). */
    private static void awaitAdmittedByRedis(RedisServer redis, WsguardProcess instance) throws Exception {
        final String probe = "198.51.100." + (200 + instance.port() % 50);
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try (RawUpgrade upgrade = RawUpgrade.send(instance.port(), "/c", Map.of("X-Forwarded-For", probe))) {
                if (upgrade.status() == 101
                        && !redis.command("KEYS wsguard:{leases}:caps:ip:" + probe)
                                .isEmpty()) {
                    return;
                }
            }
            assertThat(System.nanoTime() - deadline).as("instance uses Redis").isNegative();
            Thread.sleep(100);
        }
    }

    private void open(WsguardProcess instance) throws Exception {
        final RawUpgrade upgrade = RawUpgrade.send(instance.port(), "/c", Map.of("X-Forwarded-For", CLIENT));
        closeAfter.add(upgrade);
        assertThat(upgrade.status()).isEqualTo(101);
    }

    private static int status(WsguardProcess instance) throws Exception {
        try (RawUpgrade upgrade = RawUpgrade.send(instance.port(), "/c", Map.of("X-Forwarded-For", CLIENT))) {
            return upgrade.status();
        }
    }
}
