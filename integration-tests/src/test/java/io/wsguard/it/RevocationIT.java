package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.auth.TokenMinter;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16, revocation everywhere, with three wsguard processes (the built jar) and a real
 * redis-server: a close by subject and a revocation asked of one instance reach all three, each
 * closing its own sockets with 1008 and auditing them, and each refusing the revoked subject's new
 * handshakes with 401 {@code token_revoked} before the upstream is dialed.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RevocationIT {

    private static final String SECRET = "an HS256 test secret of at least thirty-two bytes";

    @TempDir
    Path dir;

    @Test
    void closeBySubjectAndRevokeReachAllThreeInstances() throws Exception {
        final List<AutoCloseable> resources = new ArrayList<>();
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient()) {
            final RedisServer redis = RedisServer.onFreePort(dir).start();
            resources.add(redis);
            final List<WsguardProcess> instances = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                final Path own = Files.createDirectories(dir.resolve("wsguard-" + i));
                final WsguardProcess instance = WsguardProcess.start(PolicyText.in(own)
                        .routes("""
                        - name: chat
                          match: { path: /chat }
                          upstream: { targets: [%s] }
                          auth:
                            jwt: { algorithms: [HS256], secret: "%s" }
                        """.formatted(upstream.uri("/echo"), SECRET))
                        .extra("admin: { host: 127.0.0.1, port: 0 }\n"
                                + "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri()
                                + "', onUnavailable: local, leaseTtl: 3s } }\n"));
                resources.add(instance);
                instances.add(instance);
            }
            await().atMost(Duration.ofSeconds(15)).until(() -> redis.command(
                            "EVAL \"return tostring(redis.call('PUBSUB', 'NUMSUB', KEYS[1])[2])\" 1 wsguard:events")
                    .equals(List.of("3")));

            // Close by subject, asked of the first instance: alice's socket on each of the three closes.
            final List<TestClient.Recorder> alice = new ArrayList<>();
            for (WsguardProcess instance : instances) {
                alice.add(connect(client, instance, token("alice")));
            }
            final HttpResponse<String> closed = post(instances.get(0), "/admin/connections/close?sub=alice");
            assertThat(closed.statusCode()).isEqualTo(200);
            assertThat(closed.body())
                    .contains("\"closed\":1")
                    .contains("\"scope\":\"cluster\"")
                    .contains("\"subscribers\":3");
            for (int i = 0; i < 3; i++) {
                assertThat(alice.get(i).awaitClose())
                        .as("alice on instance %d closed", i)
                        .isTrue();
                assertThat(alice.get(i).closeCode)
                        .as("alice's close code on instance %d", i)
                        .isEqualTo(1008);
                final String detail = i == 0 ? "closed by operator (sub=alice)" : "closed by operator on instance ";
                instances
                        .get(i)
                        .awaitAudit(
                                line -> "session_expired".equals(line.get("reason"))
                                        && "alice".equals(line.get("sub"))
                                        && Integer.valueOf(1008).equals(line.get("closeCode"))
                                        && String.valueOf(line.get("detail")).startsWith(detail),
                                "alice's close on instance " + i);
            }

            // Revoke, asked of the second instance: bob's sockets close everywhere, his handshakes are refused.
            final List<TestClient.Recorder> bob = new ArrayList<>();
            for (WsguardProcess instance : instances) {
                bob.add(connect(client, instance, token("bob")));
            }
            final HttpResponse<String> revoked = post(instances.get(1), "/admin/revoke?sub=bob&ttl=10m");
            assertThat(revoked.statusCode()).isEqualTo(200);
            assertThat(revoked.body())
                    .contains("\"kind\":\"sub\",\"value\":\"bob\"")
                    .contains("\"closed\":1")
                    .contains("\"scope\":\"cluster\"")
                    .contains("\"subscribers\":3");
            for (int i = 0; i < 3; i++) {
                assertThat(bob.get(i).awaitClose())
                        .as("bob on instance %d closed", i)
                        .isTrue();
                assertThat(bob.get(i).closeCode)
                        .as("bob's close code on instance %d", i)
                        .isEqualTo(1008);
            }
            final int upgrades = upstream.upgrades();
            for (int i = 0; i < 3; i++) {
                final WsguardProcess instance = instances.get(i);
                try (RawUpgrade refused = RawUpgrade.send(
                        instance.listener(0).getPort(), "/chat", Map.of("Authorization", "Bearer " + token("bob")))) {
                    assertThat(refused.status())
                            .as("bob's handshake on instance %d", i)
                            .isEqualTo(401);
                }
                instance.awaitAudit(
                        line -> "token_revoked".equals(line.get("reason"))
                                && "bob".equals(line.get("sub"))
                                && Integer.valueOf(401).equals(line.get("status")),
                        "bob's refusal on instance " + i);
            }
            assertThat(upstream.upgrades())
                    .as("the upstream saw none of bob's refused handshakes")
                    .isEqualTo(upgrades);
            // Everyone else still gets in, and every instance lists the revocation.
            connect(client, instances.get(2), token("carol"));
            for (WsguardProcess instance : instances) {
                assertThat(get(instance, "/admin/revocations"))
                        .contains("\"scope\":\"cluster\"")
                        .contains("\"kind\":\"sub\",\"value\":\"bob\"");
            }
        } finally {
            for (int i = resources.size() - 1; i >= 0; i--) {
                resources.get(i).close();
            }
        }
    }

    private static String token(String subject) {
        return TokenMinter.mint(
                TokenMinter.Options.withSecret(SECRET, subject, Duration.ofMinutes(10)), Clock.systemUTC());
    }

    private static TestClient.Recorder connect(TestClient client, WsguardProcess instance, String token)
            throws Exception {
        final TestClient.Recorder recorder =
                client.connect(instance.uri("/chat"), Map.of("Authorization", "Bearer " + token), List.of());
        recorder.send("hello");
        assertThat(recorder.next()).isEqualTo("hello");
        return recorder;
    }

    private static HttpResponse<String> post(WsguardProcess instance, String pathAndQuery) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(instance.admin().resolve(pathAndQuery))
                                .POST(HttpRequest.BodyPublishers.noBody())
                                .timeout(Duration.ofSeconds(10))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
    }

    private static String get(WsguardProcess instance, String pathAndQuery) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(instance.admin().resolve(pathAndQuery))
                                .timeout(Duration.ofSeconds(10))
                                .build(),
                        HttpResponse.BodyHandlers.ofString())
                .body();
    }
}
