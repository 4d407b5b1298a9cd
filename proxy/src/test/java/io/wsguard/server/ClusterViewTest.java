package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The cluster view against a real redis-server and in-process proxies: {@code GET /admin/cluster}
 * lists every live instance with its bound ports, connections and blocked traffic, warns when two
 * run different routes (and not when only their ports differ), says so in {@code /metrics}, and
 * forgets a stopped instance; without Redis, or while it is down, it is this instance and a note.
 */
@Timeout(60)
class ClusterViewTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final HttpClient HTTP = HttpClient.newHttpClient();

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
    void proxiesOnOneRedisBothAppearWithTheirPortsAndCounts() throws Exception {
        final RedisServer redis = redis();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        final String idA = a.server().redis().instanceId();
        final String idB = b.server().redis().instanceId();
        final TestClient client = new TestClient();
        closeAfter.add(client);
        client.connect(a.uri("/c"));
        try (RawUpgrade refused = RawUpgrade.send(b.port(), "/nowhere", Map.of())) {
            assertThat(refused.status()).isEqualTo(404);
        }

        // b's counts reach a at b's next heartbeat (a third of leaseTtl: 1 s).
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            final JsonNode view = cluster(a);
            assertThat(ids(view)).containsExactly(idA, idB);
            final JsonNode onA = view.get("instances").get(0);
            final JsonNode onB = view.get("instances").get(1);
            assertThat(onA.get("connections").asLong()).isEqualTo(1);
            assertThat(onB.path("blocked").path("no_route").asLong()).isEqualTo(1);
            assertThat(view.path("blocked").path("no_route").asLong()).isEqualTo(1);
            assertThat(view.get("connections").asLong()).isEqualTo(1);
        });
        final JsonNode view = cluster(a);
        assertThat(view.get("self").asString()).isEqualTo(idA);
        assertThat(view.get("storeStatus").asString()).isEqualTo("available");
        assertThat(view.get("store").asString()).contains(Integer.toString(redis.port()));
        assertThat(view.get("warnings")).isEmpty();
        assertThat(view.get("note").isNull()).isTrue();
        final JsonNode onA = view.get("instances").get(0);
        final JsonNode onB = view.get("instances").get(1);
        assertThat(onA.get("self").asBoolean()).isTrue();
        assertThat(onB.get("self").asBoolean()).isFalse();
        // The ports as bound, not the policy's 0.
        assertThat(onA.get("listeners").get(0).asString()).isEqualTo("ws://127.0.0.1:" + a.port());
        assertThat(onB.get("listeners").get(0).asString()).isEqualTo("ws://127.0.0.1:" + b.port());
        assertThat(onA.get("admin").asString()).isEqualTo(a.server().adminUrl());
        assertThat(onB.get("admin").asString()).isEqualTo(b.server().adminUrl());
        assertThat(onA.get("admin").asString()).doesNotEndWith(":0");
        // Redis's clock at the last heartbeat: within a heartbeat or two of now on one machine.
        final Instant heartbeat = Instant.parse(onB.get("heartbeatAt").asString());
        assertThat(Duration.between(heartbeat, Instant.now()).abs()).isLessThan(Duration.ofSeconds(5));
        assertThat(onA.get("routesHash").asString())
                .hasSize(64)
                .isEqualTo(onB.get("routesHash").asString());
        // The record in Redis expires with its lease.
        assertThat(redis.command("HKEYS wsguard:{members}:records")).containsExactlyInAnyOrder(idA, idB);
        assertThat(Long.parseLong(
                        redis.command("PTTL wsguard:{members}:records").get(0)))
                .isPositive();

        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(a.server().metrics().scrape())
                        .contains("wsguard_cluster_instances 2.0")
                        .contains("wsguard_cluster_routes_mismatch 0.0"));
    }

    @Test
    void aRouteChangeOnOneIsAWarningAndAPortDifferenceIsNot() throws Exception {
        final RedisServer redis = redis();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        final String idB = b.server().redis().instanceId();
        // Different listeners (and admin ports, and policy directories), the same routes.
        assertThat(b.port()).isNotEqualTo(a.port());

        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            final JsonNode view = cluster(a);
            assertThat(view.get("instances")).hasSize(2);
            assertThat(view.get("warnings")).isEmpty();
        });
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(a.server().metrics().scrape())
                        .contains("wsguard_cluster_instances 2.0")
                        .contains("wsguard_cluster_routes_mismatch 0.0"));

        final Path file = dir.resolve("b").resolve("policy.yaml");
        Files.writeString(file, Files.readString(file).replace("maxSize: 64KiB", "maxSize: 32KiB"));
        assertThat(b.server().reload().applied()).isTrue();

        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            final JsonNode view = cluster(a);
            assertThat(view.get("warnings")).singleElement().satisfies(warning -> assertThat(warning.asString())
                    .contains(a.server().redis().instanceId(), idB, "run different routes"));
            assertThat(view.get("instances").get(0).get("routesHash").asString())
                    .isNotEqualTo(view.get("instances").get(1).get("routesHash").asString());
        });
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
            assertThat(a.server().metrics().scrape()).contains("wsguard_cluster_routes_mismatch 1.0");
            assertThat(b.server().metrics().scrape()).contains("wsguard_cluster_routes_mismatch 1.0");
        });

        // Back to the same routes: the warning goes.
        Files.writeString(file, Files.readString(file).replace("maxSize: 32KiB", "maxSize: 64KiB"));
        assertThat(b.server().reload().applied()).isTrue();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(cluster(a).get("warnings")).isEmpty();
            assertThat(a.server().metrics().scrape()).contains("wsguard_cluster_routes_mismatch 0.0");
        });
    }

    @Test
    void aStoppedInstanceDisappearsAtOnce() throws Exception {
        final RedisServer redis = redis();
        final RunningProxy a = proxy("a", redis);
        final RunningProxy b = proxy("b", redis);
        final String idA = a.server().redis().instanceId();
        await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(cluster(a).get("instances")).hasSize(2));

        b.close();

        // Removed at stop, not left to lapse after leaseTtl (3 s).
        assertThat(ids(cluster(a))).containsExactly(idA);
        assertThat(redis.command("HKEYS wsguard:{members}:records")).containsExactly(idA);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(
                        () -> assertThat(a.server().metrics().scrape()).contains("wsguard_cluster_instances 1.0"));
    }

    @Test
    void withoutRedisOrWhileItIsDownTheViewIsThisInstanceWithANote() throws Exception {
        final Path own = Files.createDirectories(dir.resolve("alone"));
        final RunningProxy alone = RunningProxy.start(policy(own).extra("admin: { host: 127.0.0.1, port: 0 }\n"));
        closeAfter.add(alone);
        final JsonNode local = cluster(alone);
        assertThat(local.get("store").asString()).isEqualTo("none");
        assertThat(local.get("note").asString()).contains("no shared store");
        assertThat(local.get("instances")).singleElement().satisfies(self -> {
            assertThat(self.get("self").asBoolean()).isTrue();
            assertThat(self.get("listeners").get(0).asString()).isEqualTo("ws://127.0.0.1:" + alone.port());
            assertThat(self.get("routesHash").asString()).hasSize(64);
        });
        assertThat(alone.server().metrics().scrape())
                .contains("wsguard_cluster_instances 1.0")
                .contains("wsguard_cluster_routes_mismatch 0.0");

        final RedisServer redis = redis();
        final RunningProxy a = proxy("a", redis);
        await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() ->
                        assertThat(cluster(a).get("storeStatus").asString()).isEqualTo("available"));
        redis.kill();
        final long started = System.nanoTime();
        final JsonNode down = cluster(a);
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(2));
        assertThat(down.get("storeStatus").asString()).startsWith("unavailable: ");
        assertThat(down.get("note").asString()).contains("cannot be reached");
        assertThat(ids(down)).containsExactly(a.server().redis().instanceId());
    }

    // --------------------------------------------------------------------------------------------

    private RedisServer redis() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(dir);
        closeAfter.add(redis);
        return redis.start();
    }

    private PolicyText policy(Path own) {
        return PolicyText.in(own).routes("""
                - name: chat
                  match: { path: /c }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { maxSize: 64KiB }
                """.formatted(upstream.uri("/echo")));
    }

    /** A proxy with an admin port, sharing {@code redis}, with leases of 3 s. */
    private RunningProxy proxy(String name, RedisServer redis) throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        final PolicyText policy = policy(own)
                .extra("admin: { host: 127.0.0.1, port: 0 }\n"
                        + "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri()
                        + "', leaseTtl: 3s } }\n");
        final RunningProxy proxy = RunningProxy.start(policy);
        closeAfter.add(proxy);
        await().atMost(Duration.ofSeconds(10))
                .until(() -> proxy.server().redis().available());
        return proxy;
    }

    private static JsonNode cluster(RunningProxy proxy) throws Exception {
        final HttpResponse<String> response = HTTP.send(
                HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + "/admin/cluster"))
                        .timeout(Duration.ofSeconds(5))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return JSON.readTree(response.body());
    }

    private static List<String> ids(JsonNode view) {
        final List<String> ids = new ArrayList<>();
        view.get("instances").forEach(member -> ids.add(member.get("id").asString()));
        return ids;
    }
}
