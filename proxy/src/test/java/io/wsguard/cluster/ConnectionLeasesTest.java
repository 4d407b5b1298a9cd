package io.wsguard.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.policy.RateLimitStorePolicy.OnUnavailable;
import io.wsguard.policy.RateLimitStorePolicy.RedisPolicy;
import io.wsguard.testing.RedisServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ConnectionLeases} on a real redis-server: a lease given back while the heartbeat renews
 * the others is never written back by that renewal, and a stop gives back what is still held.
 */
@Timeout(60)
class ConnectionLeasesTest {

    private static final String KEY = ConnectionLeases.perIpKey("t", "192.0.2.1");

    @TempDir
    Path dir;

    @Test
    void aLeaseReleasedDuringRenewalsIsNeverWrittenBack() throws Exception {
        try (RedisServer redis = RedisServer.onFreePort(dir).start();
                RedisStore store = RedisStore.connect(policy(redis), null)) {
            final ConnectionLeases leases = new ConnectionLeases(store);
            await().atMost(Duration.ofSeconds(10)).until(store::connected);
            final List<ConnectionLeases.Cap> caps = List.of(
                    new ConnectionLeases.Cap(KEY, 1_000_000),
                    new ConnectionLeases.Cap(ConnectionLeases.MAX_KEY, 1_000_000));
            // About 2,000 held at any time while the oldest go back: several heartbeats (one a second)
            // renew thousands of leases while releases keep coming from this thread.
            final Deque<ConnectionLeases.Lease> live = new ArrayDeque<>();
            final long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(3500);
            int n = 0;
            while (System.nanoTime() - end < 0) {
                final ConnectionLeases.Outcome outcome =
                        leases.acquire(caps, "c" + n++).toCompletableFuture().get(5, TimeUnit.SECONDS);
                assertThat(outcome.full()).isNull();
                live.add(outcome.lease());
                if (live.size() > 2000) {
                    live.poll().release();
                }
            }
            // The last releases may still be on their way (a release during a renewal is sent after it).
            final int holding = live.size();
            await().atMost(Duration.ofSeconds(2)).until(() -> zcard(redis, KEY) == holding);
            live.forEach(ConnectionLeases.Lease::release);

            // Past more than one heartbeat (and well within leaseTtl, so nothing merely expired):
            // every lease went back and none was renewed back in.
            Thread.sleep(store.heartbeatInterval().toMillis() * 3 / 2);
            assertThat(leases.held()).isZero();
            assertThat(zcard(redis, KEY)).isZero();
            assertThat(zcard(redis, ConnectionLeases.MAX_KEY)).isZero();
            assertThat(n).as("leases taken").isGreaterThan(2000);
        }
    }

    @Test
    void closeGivesBackWhatIsStillHeld() throws Exception {
        try (RedisServer redis = RedisServer.onFreePort(dir).start();
                RedisStore store = RedisStore.connect(policy(redis), null)) {
            final ConnectionLeases leases = new ConnectionLeases(store);
            await().atMost(Duration.ofSeconds(10)).until(store::connected);
            final List<ConnectionLeases.Cap> caps = List.of(new ConnectionLeases.Cap(KEY, 2));
            for (int i = 0; i < 2; i++) {
                assertThat(leases.acquire(caps, "c" + i)
                                .toCompletableFuture()
                                .get(5, TimeUnit.SECONDS)
                                .lease())
                        .isNotNull();
            }
            final ConnectionLeases.Outcome full =
                    leases.acquire(caps, "c2").toCompletableFuture().get(5, TimeUnit.SECONDS);
            assertThat(full.lease()).isNull();
            assertThat(full.full()).isEqualTo(caps.get(0));

            leases.close();
            assertThat(zcard(redis, KEY)).isZero();
        }
    }

    private static RedisPolicy policy(RedisServer redis) {
        return new RedisPolicy(
                redis.uri(),
                OnUnavailable.LOCAL,
                false,
                Optional.empty(),
                Optional.empty(),
                Duration.ofMillis(500),
                Duration.ofSeconds(3));
    }

    private static long zcard(RedisServer redis, String key) throws Exception {
        return Long.parseLong(redis.command("ZCARD " + key).get(0));
    }
}
