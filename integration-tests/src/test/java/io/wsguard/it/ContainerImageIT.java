package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.deploy.DeployFiles;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.UpstreamServer;
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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the container image runs, without a Docker daemon: the release tarball unpacked as the
 * Dockerfile unpacks it ({@code /opt/wsguard}, here a temporary folder), its ENTRYPOINT and CMD run as
 * written with the image's {@code JAVA_OPTS}, and the Kubernetes policy placed at the documented
 * {@code /etc/wsguard/policy.yaml} (moved into the folder, with its certificate where the Secret puts
 * it, its Redis a real {@code redis-server} with the password, its ports free ones). The probes port
 * answers {@code /healthz} and {@code /readyz} and refuses {@code /admin/*}; SIGTERM drains and exits 0.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ContainerImageIT {

    private static final String IMAGE_HOME = "/opt/wsguard";

    @TempDir
    Path dir;

    @Test
    void theImagesEntrypointAndCommandServeTheKubernetesPolicyAndDrainOnSigterm() throws Exception {
        final String version = System.getProperty("wsguard.version");
        final Path tarball = Path.of(System.getProperty("wsguard.release.dir"))
                .resolve("wsguard-" + version + ".tar.gz")
                .toAbsolutePath();
        assertThat(tarball).as("run the proxy module's package phase first").isRegularFile();
        // As the Dockerfile's build stage: tar -xzf, then wsguard-VERSION becomes /opt/wsguard.
        final Path opt = Files.createDirectories(dir.resolve("opt"));
        assertThat(new ProcessBuilder("tar", "-xzf", tarball.toString(), "-C", opt.toString())
                        .inheritIO()
                        .start()
                        .waitFor())
                .isZero();
        final Path home = Files.move(opt.resolve("wsguard-" + version), opt.resolve("wsguard"));
        final Path etc = Files.createDirectories(dir.resolve("etc/wsguard"));

        try (RedisServer redis = RedisServer.onFreePort(dir).password(DeployFiles.SECRETS.get("REDIS_PASSWORD"));
                UpstreamServer upstream = new UpstreamServer()) {
            redis.start();
            final String policy = Files.readString(DeployFiles.POLICY, StandardCharsets.UTF_8)
                    .replace("port: 8443", "port: 0")
                    .replace("port: 9090", "port: 0")
                    .replace("port: 9091", "port: 0")
                    .replace("redis://redis:6379", redis.uri())
                    .replace(
                            "ws://chat-backend:8080/chat", upstream.uri("/chat").toString());
            DeployFiles.mountedPolicy(etc, policy);

            final List<String> command = new ArrayList<>();
            command.addAll(DeployFiles.execForm("ENTRYPOINT"));
            command.addAll(DeployFiles.execForm("CMD"));
            final List<String> mapped = command.stream()
                    .map(word -> word.replace(IMAGE_HOME, home.toString()).replace(DeployFiles.CONFIG_DIR, etc + "/"))
                    .toList();
            assertThat(mapped.get(0)).isEqualTo(home.resolve("bin/wsguard").toString());

            final ProcessBuilder builder = new ProcessBuilder(mapped).directory(home.toFile());
            builder.environment().put("JAVA_OPTS", DeployFiles.imageJavaOpts());
            DeployFiles.SECRETS.forEach(builder.environment()::put);
            final Process process = builder.start();
            final List<String> stdout = new CopyOnWriteArrayList<>();
            final List<String> stderr = new CopyOnWriteArrayList<>();
            WsguardProcess.pump(process.getInputStream(), stdout::add);
            WsguardProcess.pump(process.getErrorStream(), stderr::add);
            try {
                await().atMost(Duration.ofSeconds(60)).until(() -> {
                    assertThat(process.isAlive())
                            .as("wsguard exited: %s", stderr)
                            .isTrue();
                    // The policy's audit.sink is stdout, so stdout holds only audit lines and the ready
                    // lines are on stderr.
                    return stderr.stream().anyMatch(line -> line.startsWith("wsguard: probes on "));
                });
                assertThat(stdout).noneMatch(line -> line.startsWith("wsguard: "));
                final String probesLine = stderr.stream()
                        .filter(line -> line.startsWith("wsguard: probes on "))
                        .findFirst()
                        .orElseThrow();
                // "wsguard: probes on http://0.0.0.0:PORT (/healthz, /readyz, /metrics)"
                final int probesPort = URI.create(probesLine.split(" ", -1)[3]).getPort();
                final String probes = "http://127.0.0.1:" + probesPort;
                final HttpClient http = HttpClient.newHttpClient();

                assertThat(get(http, probes + "/healthz")).startsWith("200 ok");
                // Ready and not degraded: the shared Redis answered, with the password from the environment.
                await().atMost(Duration.ofSeconds(20))
                        .until(() -> get(http, probes + "/readyz").equals("200 ready"));
                assertThat(get(http, probes + "/admin/policy")).startsWith("404 ");
                // -XX:-UsePerfData from the image's JAVA_OPTS: no hsperfdata file for a read-only root.
                final Path perfData = Path.of("/tmp")
                        .resolve("hsperfdata_" + System.getProperty("user.name"))
                        .resolve(String.valueOf(process.pid()));
                assertThat(perfData).doesNotExist();
            } finally {
                // The image's STOPSIGNAL: SIGTERM, which Process.destroy sends on Linux.
                process.destroy();
                assertThat(process.waitFor(60, TimeUnit.SECONDS))
                        .as("drained within drainTimeout")
                        .isTrue();
            }
            assertThat(process.exitValue()).as("stderr: %s", stderr).isZero();
        }
    }

    /** "STATUS BODY". */
    private static String get(HttpClient http, String url) throws Exception {
        final HttpResponse<String> response = http.send(
                HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(5))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return response.statusCode() + " " + response.body();
    }
}
