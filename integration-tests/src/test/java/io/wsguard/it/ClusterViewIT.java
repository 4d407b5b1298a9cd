package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RedisServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Three wsguard processes (the built jar) on one real redis-server: {@code GET /admin/cluster} on
 * any of them lists all three, the dashboard page (rendered by headless Chromium, its script fed by
 * {@code /admin/cluster}) shows them, and after {@code kill -9} of one the other two list two
 * within {@code leaseTtl} (3 s here).
 */
@Timeout(120)
class ClusterViewIT {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final Duration LEASE_TTL = Duration.ofSeconds(3);
    private static final String CHROMIUM = System.getProperty("chromium", "/usr/bin/chromium");

    @TempDir
    Path tmp;

    private final List<AutoCloseable> closeAfter = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (int i = closeAfter.size() - 1; i >= 0; i--) {
            closeAfter.get(i).close();
        }
    }

    @Test
    void listsAllThreeThenTwoAfterOneIsKilled() throws Exception {
        final RedisServer redis = RedisServer.onFreePort(tmp);
        closeAfter.add(redis);
        redis.start();
        // One after the other: on two cores, JVMs started side by side are each as much slower.
        final List<WsguardProcess> instances = new ArrayList<>();
        for (String name : List.of("one", "two", "three")) {
            instances.add(start(name, redis));
        }
        final WsguardProcess first = instances.get(0);

        await().atMost(Duration.ofSeconds(20))
                .untilAsserted(() -> assertThat(cluster(first).get("instances")).hasSize(3));
        final JsonNode all = cluster(first);
        assertThat(all.get("warnings")).isEmpty();
        final List<String> listed = new ArrayList<>();
        all.get("instances")
                .forEach(member -> listed.add(member.get("listeners").get(0).asString()));
        assertThat(listed)
                .containsExactlyInAnyOrderElementsOf(instances.stream()
                        .map(p -> p.listener(0).toString().replaceAll("/$", ""))
                        .toList());
        final List<String> ids = new ArrayList<>();
        all.get("instances").forEach(member -> ids.add(member.get("id").asString()));
        final String self = all.get("self").asString();

        // The dashboard's own script renders what /admin/cluster said, in a real browser.
        final String dom = dashboardDom(first);
        assertThat(dom).contains(self + " (this one)");
        for (String id : ids) {
            assertThat(dom).contains(id);
        }

        final WsguardProcess victim = instances.get(2);
        final String victimListener = victim.listener(0).toString().replaceAll("/$", "");
        victim.process().destroyForcibly(); // SIGKILL: no chance to remove its record
        assertThat(victim.process().waitFor(10, TimeUnit.SECONDS)).isTrue();
        final long killed = System.nanoTime();

        // Gone within leaseTtl of its last heartbeat, which was at most a third of it before the kill.
        await().atMost(LEASE_TTL.plusSeconds(2))
                .pollInterval(Duration.ofMillis(100))
                .untilAsserted(() -> {
                    for (WsguardProcess survivor : instances.subList(0, 2)) {
                        final JsonNode view = cluster(survivor);
                        assertThat(view.get("instances")).hasSize(2);
                        view.get("instances").forEach(member -> assertThat(
                                        member.get("listeners").get(0).asString())
                                .isNotEqualTo(victimListener));
                    }
                });
        System.out.printf(
                "cluster view: the killed instance left the view %d ms after kill -9 (leaseTtl %d ms)%n",
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed), LEASE_TTL.toMillis());
    }

    private WsguardProcess start(String name, RedisServer redis) {
        final WsguardProcess process;
        try {
            process = WsguardProcess.start(PolicyText.in(Files.createDirectories(tmp.resolve(name)))
                    .routes("""
                        - name: chat
                          match: { path: /c }
                          upstream: { targets: ["ws://127.0.0.1:9/"] }
                          auth: none
                        """)
                    .extra("admin: { host: 127.0.0.1, port: 0 }\n"
                            + "rateLimitStore: { type: redis, redis: { uri: '" + redis.uri() + "', leaseTtl: "
                            + LEASE_TTL.toSeconds() + "s } }\n"));
        } catch (Exception e) {
            throw new IllegalStateException("wsguard " + name + " did not start", e);
        }
        closeAfter.add(process);
        return process;
    }

    private static JsonNode cluster(WsguardProcess process) throws Exception {
        final HttpResponse<String> response = HTTP.send(
                HttpRequest.newBuilder(process.admin().resolve("/admin/cluster"))
                        .timeout(Duration.ofSeconds(5))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return JSON.readTree(response.body());
    }

    /**
     * The dashboard's DOM once its first poll has rendered, from headless Chromium: the page runs
     * under its real Content-Security-Policy, against the real endpoints.
     */
    private String dashboardDom(WsguardProcess process) throws Exception {
        assertThat(Path.of(CHROMIUM))
                .as("Chromium renders the dashboard here and is missing: install it (apt-get install -y"
                        + " chromium) or point -Dchromium=PATH at it")
                .isExecutable();
        final Path profile = Files.createDirectories(tmp.resolve("chromium-profile"));
        final Path out = tmp.resolve("dom.html");
        final Path err = tmp.resolve("chromium.err");
        final URI page = process.admin().resolve("/");
        final Process chromium = new ProcessBuilder(
                        CHROMIUM,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--user-data-dir=" + profile,
                        // Virtual time waits for the page's fetches before the DOM is dumped.
                        "--virtual-time-budget=10000",
                        "--dump-dom",
                        page.toString())
                .redirectOutput(out.toFile())
                .redirectError(err.toFile())
                .start();
        try {
            assertThat(chromium.waitFor(60, TimeUnit.SECONDS))
                    .as("chromium --dump-dom did not finish: %s", Files.readString(err))
                    .isTrue();
        } finally {
            chromium.descendants().forEach(ProcessHandle::destroyForcibly);
            chromium.destroyForcibly();
        }
        return Files.readString(out, StandardCharsets.UTF_8);
    }
}
