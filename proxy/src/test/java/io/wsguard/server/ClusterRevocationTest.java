package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16, revocation everywhere, against a real redis-server and in-process proxies that share it:
 * {@code POST /admin/connections/close} on one instance closes the subject's sockets on another
 * (1008, audited there); {@code POST /admin/revoke} refuses new handshakes on every instance with 401
 * {@code token_revoked} until its TTL ends, by subject or by {@code jti}; a Redis restarted empty,
 * or unreachable when the revocation was made, does not lose it; without Redis both act on the one
 * instance and say so.
 */
@Timeout(120)
class ClusterRevocationTest {

    private static final String SECRET = "an HS256 test secret of at least thirty-two bytes";
    private static final HttpClient HTTP = HttpClient.newHttpClient();

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
    void closeBySubjectOnOneInstanceClosesItsSocketsOnAnotherWith1008AndThatOneAuditsIt() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        awaitSubscribed(redis, 2);

        final TestClient.Recorder aliceOnA = connect(a, token("alice", null));
        final TestClient.Recorder aliceOnB = connect(b, token("alice", null));
        final TestClient.Recorder bobOnB = connect(b, token("bob", null));
        final int closesBefore = upstream.closes().size();

        final HttpResponse<String> answer = post(a, "/admin/connections/close?sub=alice");
        assertThat(answer.statusCode()).isEqualTo(200);
        assertThat(answer.body())
                .contains("\"closed\":1")
                .contains("\"scope\":\"cluster\"")
                .contains("\"subscribers\":2");

        assertThat(aliceOnA.awaitClose()).isTrue();
        assertThat(aliceOnA.closeCode).isEqualTo(1008);
        assertThat(aliceOnB.awaitClose()).isTrue();
        assertThat(aliceOnB.closeCode).isEqualTo(1008);
        final String aId = a.server().redis().instanceId();
        await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(b.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "session")
                        .containsEntry("reason", "session_expired")
                        .containsEntry("sub", "alice")
                        .containsEntry("closeCode", 1008)
                        .containsEntry("detail", "closed by operator on instance " + aId + " (sub=alice)")));
        assertThat(a.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("sub", "alice")
                .containsEntry("closeCode", 1008)
                .containsEntry("detail", "closed by operator (sub=alice)"));
        // Both upstream sides were told the client went away.
        await().atMost(Duration.ofSeconds(10)).until(() -> upstream.closes().size() >= closesBefore + 2);

        // Another subject on B was not matched: it still relays.
        bobOnB.send("still here");
        assertThat(bobOnB.next()).isEqualTo("still here");
    }

    @Test
    void revokeOnOneInstanceRefusesTheSubjectOnAnotherUntilItsTtlEnds() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        awaitSubscribed(redis, 2);
        final TestClient.Recorder aliceOnB = connect(b, token("alice", null));

        final HttpResponse<String> answer = post(a, "/admin/revoke?sub=alice&ttl=4s");
        assertThat(answer.statusCode()).isEqualTo(200);
        assertThat(answer.body())
                .contains("\"kind\":\"sub\",\"value\":\"alice\"")
                .contains("\"closed\":0")
                .contains("\"scope\":\"cluster\"")
                .contains("\"subscribers\":2");

        // Open connections of the subject close on every instance.
        assertThat(aliceOnB.awaitClose()).isTrue();
        assertThat(aliceOnB.closeCode).isEqualTo(1008);

        // New handshakes are refused on B with 401 token_revoked, before the upstream is dialed.
        final int upgradesBefore = upstream.upgrades();
        final String alice = token("alice", null);
        try (RawUpgrade refused = upgrade(b, alice)) {
            assertThat(refused.status()).isEqualTo(401);
            assertThat(refused.header("WWW-Authenticate")).isEqualTo("Bearer error=\"invalid_token\"");
        }
        assertThat(upstream.upgrades()).isEqualTo(upgradesBefore);
        final String aId = a.server().redis().instanceId();
        assertThat(b.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", "token_revoked")
                .containsEntry("sub", "alice")
                .containsEntry("status", 401)
                .hasEntrySatisfying("detail", detail -> assertThat((String) detail)
                        .startsWith("sub alice revoked until ")
                        .endsWith("(asked on instance " + aId + ")")));
        // Another subject is let in; so is alice on neither instance.
        assertThat(status(b, token("bob", null))).isEqualTo(101);
        assertThat(status(a, alice)).isEqualTo(401);

        // B lists it, as asked on A.
        final HttpResponse<String> listed = get(b, "/admin/revocations");
        assertThat(listed.body())
                .contains("\"scope\":\"cluster\"")
                .contains("\"kind\":\"sub\",\"value\":\"alice\"")
                .contains("\"by\":\"" + aId + "\"");

        // Once the TTL is over, alice gets in again everywhere.
        await().atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(250))
                .until(() -> status(b, alice) == 101 && status(a, alice) == 101);
        assertThat(get(b, "/admin/revocations").body()).contains("\"revocations\":[]");
    }

    @Test
    void revokeByJtiClosesAndRefusesThatTokenAloneOnEveryInstance() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        awaitSubscribed(redis, 2);
        final String stolen = token("carol", "t-stolen");
        final String other = token("carol", "t-other");
        final TestClient.Recorder stolenOnB = connect(b, stolen);
        final TestClient.Recorder otherOnB = connect(b, other);
        assertThat(get(b, "/admin/connections").body()).contains("\"jti\":\"t-stolen\"");

        final HttpResponse<String> answer = post(a, "/admin/revoke?jti=t-stolen&ttl=10m");
        assertThat(answer.body())
                .contains("\"kind\":\"jti\",\"value\":\"t-stolen\"")
                .contains("\"ttlSeconds\":600");

        assertThat(stolenOnB.awaitClose()).isTrue();
        assertThat(stolenOnB.closeCode).isEqualTo(1008);
        final int upgradesBefore = upstream.upgrades();
        assertThat(status(b, stolen)).isEqualTo(401);
        assertThat(upstream.upgrades()).isEqualTo(upgradesBefore);
        assertThat(b.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "token_revoked")
                .containsEntry("status", 401)
                .hasEntrySatisfying("detail", d -> assertThat((String) d).startsWith("jti t-stolen revoked until ")));
        // The subject's other token is untouched.
        otherOnB.send("mine");
        assertThat(otherOnB.next()).isEqualTo("mine");
        assertThat(status(a, token("carol", "t-third"))).isEqualTo(101);
    }

    @Test
    void aRedisRestartedEmptyGetsTheRevocationsBackFromTheInstances() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis);
        awaitSubscribed(redis, 1);
        assertThat(post(a, "/admin/revoke?sub=dave&ttl=10m").body()).contains("\"scope\":\"cluster\"");
        assertThat(redis.command("HKEYS wsguard:revoked")).containsExactly("sub:dave");

        redis.kill();
        redis.start();
        assertThat(redis.command("HKEYS wsguard:revoked")).isEmpty();

        // Written back within a heartbeat of the reconnect, with what is left of the TTL.
        await().atMost(Duration.ofSeconds(15))
                .until(() -> redis.command("HKEYS wsguard:revoked").equals(List.of("sub:dave")));
        assertThat(Long.parseLong(redis.command("PTTL wsguard:revoked").get(0)))
                .isBetween(
                        Duration.ofMinutes(9).toMillis(), Duration.ofMinutes(10).toMillis());
        // An instance started after the restart learns it from Redis.
        final RunningProxy late = proxy("late", redis);
        await().atMost(Duration.ofSeconds(10)).until(() -> status(late, token("dave", null)) == 401);
        assertThat(status(a, token("dave", null))).isEqualTo(401);
    }

    @Test
    void duringAnOutageTheRevocationActsHereSaysSoAndReachesTheOthersWhenRedisIsBack() throws Exception {
        final RedisServer redis = redis().start();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        awaitSubscribed(redis, 2);
        final TestClient.Recorder erinOnB = connect(b, token("erin", null));

        redis.kill();
        final long start = System.nanoTime();
        final HttpResponse<String> answer = post(a, "/admin/revoke?sub=erin&ttl=10m");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(2000);
        assertThat(answer.statusCode()).isEqualTo(200);
        assertThat(answer.body()).contains("\"scope\":\"this instance only\"").contains("Redis unavailable");
        assertThat(post(a, "/admin/connections/close?sub=erin").body())
                .contains("\"scope\":\"this instance only\"")
                .contains("Redis unavailable");
        assertThat(status(a, token("erin", null))).isEqualTo(401);
        assertThat(status(b, token("erin", null))).isEqualTo(101);

        redis.start();
        // A writes its mirror back once Redis answers; B reads it at its next heartbeat and closes erin.
        assertThat(erinOnB.awaitClose()).isTrue();
        assertThat(erinOnB.closeCode).isEqualTo(1008);
        await().atMost(Duration.ofSeconds(15)).until(() -> status(b, token("erin", null)) == 401);
    }

    @Test
    void withoutRedisCloseAndRevokeWorkOnTheOneInstanceAndSaySo() throws Exception {
        final Path own = Files.createDirectories(dir.resolve("solo"));
        final RunningProxy solo = RunningProxy.start(policy(own, ""));
        closeAfter.add(solo);
        final TestClient.Recorder frank = connect(solo, token("frank", null));

        final HttpResponse<String> revoked = post(solo, "/admin/revoke?sub=frank&ttl=1h");
        assertThat(revoked.statusCode()).isEqualTo(200);
        assertThat(revoked.body())
                .contains("\"closed\":1")
                .contains("\"scope\":\"this instance only\"")
                .contains("rateLimitStore is local");
        assertThat(frank.awaitClose()).isTrue();
        assertThat(frank.closeCode).isEqualTo(1008);
        final int upgradesBefore = upstream.upgrades();
        assertThat(status(solo, token("frank", null))).isEqualTo(401);
        assertThat(upstream.upgrades()).isEqualTo(upgradesBefore);
        assertThat(solo.auditLines())
                .anySatisfy(line -> assertThat(line)
                        .containsEntry("reason", "session_expired")
                        .containsEntry("closeCode", 1008)
                        .containsEntry("detail", "token revoked by operator (sub=frank)"))
                .anySatisfy(line -> assertThat(line)
                        .containsEntry("reason", "token_revoked")
                        .containsEntry("sub", "frank")
                        .containsEntry("status", 401));
        assertThat(get(solo, "/admin/revocations").body())
                .contains("\"scope\":\"this instance only\"")
                .contains("\"value\":\"frank\"");

        connect(solo, token("gina", null));
        assertThat(post(solo, "/admin/connections/close?sub=gina").body())
                .contains("\"closed\":1")
                .contains("\"scope\":\"this instance only\"")
                .contains("rateLimitStore is local");
    }

    // --------------------------------------------------------------------------------------------

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir);
        closeAfter.add(redis);
        return redis;
    }

    private RunningProxy proxy(String name, RedisServer redis) throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        final RunningProxy proxy = RunningProxy.start(policy(
                own,
                "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri()
                        + "', onUnavailable: local, leaseTtl: 3s } }\n"));
        closeAfter.add(proxy);
        return proxy;
    }

    private static PolicyText policy(Path dir, String store) {
        return PolicyText.in(dir)
                .routes("""
                - name: chat
                  match: { path: /chat }
                  upstream: { targets: [%s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%s" }
                """.formatted(upstream.uri("/echo"), SECRET))
                .extra("admin: { host: 127.0.0.1, port: 0 }\n" + store);
    }

    /** Until every proxy's pub/sub connection listens on the events channel. */
    private static void awaitSubscribed(RedisServer redis, int proxies) {
        await().atMost(Duration.ofSeconds(10))
                // As a bulk string: RedisServer's reader takes arrays of bulk strings only, NUMSUB mixes in an integer.
                .until(() -> redis.command(
                                "EVAL \"return tostring(redis.call('PUBSUB', 'NUMSUB', KEYS[1])[2])\" 1 wsguard:events")
                        .equals(List.of(Integer.toString(proxies))));
    }

    private static String token(String sub, String jti) throws Exception {
        final Instant now = Instant.now();
        final JWTClaimsSet.Builder claims = new JWTClaimsSet.Builder()
                .subject(sub)
                .issueTime(Date.from(now))
                .expirationTime(Date.from(now.plus(Duration.ofMinutes(10))));
        if (jti != null) {
            claims.jwtID(jti);
        }
        final SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).build(), claims.build());
        jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
        return jwt.serialize();
    }

    private static TestClient.Recorder connect(RunningProxy proxy, String token) throws Exception {
        final TestClient.Recorder recorder =
                client.connect(proxy.uri("/chat"), Map.of("Authorization", "Bearer " + token), List.of());
        recorder.send("hello");
        assertThat(recorder.next()).isEqualTo("hello");
        return recorder;
    }

    private static RawUpgrade upgrade(RunningProxy proxy, String token) throws Exception {
        return RawUpgrade.send(proxy.port(), "/chat", Map.of("Authorization", "Bearer " + token));
    }

    private static int status(RunningProxy proxy, String token) throws Exception {
        try (RawUpgrade upgrade = upgrade(proxy, token)) {
            return upgrade.status();
        }
    }

    private static HttpResponse<String> post(RunningProxy proxy, String pathAndQuery) throws Exception {
        return HTTP.send(
                HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + pathAndQuery))
                        .POST(HttpRequest.BodyPublishers.noBody())
                        .timeout(Duration.ofSeconds(10))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> get(RunningProxy proxy, String pathAndQuery) throws Exception {
        return HTTP.send(
                HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + pathAndQuery))
                        .timeout(Duration.ofSeconds(10))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
