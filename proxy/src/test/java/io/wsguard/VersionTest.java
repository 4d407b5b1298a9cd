package io.wsguard;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.admin.ReloadResult;
import io.wsguard.cli.WsguardCommand;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * One version, the pom's, with the git commit it was built from: in {@code --version}, {@code /healthz},
 * {@code wsguard_build_info} and the audit log's config lines, read from a running proxy.
 */
@Timeout(60)
class VersionTest {

    /** The pom's project.version, handed over by surefire (proxy/pom.xml). */
    private static final String POM_VERSION = System.getProperty("wsguard.pomVersion");

    @TempDir
    Path dir;

    @Test
    void theVersionIsThePomsAndTheCommitIsTheCheckoutsHead() throws Exception {
        assertThat(POM_VERSION).as("surefire passes wsguard.pomVersion").isNotBlank();
        assertThat(Version.number()).isEqualTo(POM_VERSION);
        // The build runs git-commit-id-maven-plugin in the checkout these tests run in; outside a git
        // checkout (a source tarball) it finds none, and the commit is "unknown".
        assertThat(Version.commit()).isEqualTo(gitShortHead().orElse(Version.UNKNOWN));
    }

    @Test
    void versionOptionPrintsTheVersionAndCommit() {
        final StringWriter out = new StringWriter();
        final CommandLine commandLine = WsguardCommand.commandLine();
        commandLine.setOut(new PrintWriter(out, true));

        assertThat(commandLine.execute("--version")).isZero();
        assertThat(out.toString().strip()).isEqualTo("wsguard " + POM_VERSION + " (commit " + Version.commit() + ")");
    }

    @Test
    void healthzMetricsAndConfigAuditLinesNameTheBuild() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                RunningProxy proxy = RunningProxy.start(PolicyText.in(dir)
                        .extra("admin: { host: 127.0.0.1, port: 0 }\n")
                        .routes("""
                                - name: chat
                                  match: { path: /chat }
                                  upstream: { targets: [%s] }
                                  auth: none
                                  messages: { maxSize: 1KiB }
                                """.formatted(upstream.uri("/chat"))))) {
            final HttpClient http = HttpClient.newBuilder()
                    .connectTimeout(Duration.ofSeconds(5))
                    .build();
            final String admin = proxy.server().adminUrl();

            final HttpResponse<String> health = get(http, admin + "/healthz");
            assertThat(health.statusCode()).isEqualTo(200);
            assertThat(health.body()).isEqualTo("ok wsguard " + POM_VERSION + " (commit " + Version.commit() + ")");

            final String metrics = get(http, admin + "/metrics").body();
            final Matcher buildInfo = Pattern.compile("(?m)^wsguard_build_info\\{([^}]*)} (\\S+)$")
                    .matcher(metrics);
            assertThat(buildInfo.find())
                    .as("wsguard_build_info in:%n%s", metrics)
                    .isTrue();
            assertThat(buildInfo.group(1))
                    .contains("version=\"" + POM_VERSION + "\"")
                    .contains("commit=\"" + Version.commit() + "\"");
            assertThat(Double.parseDouble(buildInfo.group(2))).isEqualTo(1.0);

            final Path policy = dir.resolve("policy.yaml");
            Files.writeString(policy, Files.readString(policy).replace("maxSize: 1KiB", "maxSize: lots"));
            final ReloadResult refused = proxy.server().reload();
            assertThat(refused.applied()).isFalse();
            assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                    .containsEntry("event", "config")
                    .containsEntry("reason", "config_rejected")
                    .containsEntry("version", POM_VERSION)
                    .containsEntry("commit", Version.commit()));
        }
    }

    private static HttpResponse<String> get(HttpClient http, String url) throws Exception {
        return http.send(
                HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(5))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** {@code git rev-parse --short=7 HEAD} in this module's checkout, if there is git and a checkout. */
    private static Optional<String> gitShortHead() throws Exception {
        final Process git;
        try {
            git = new ProcessBuilder("git", "rev-parse", "--short=7", "HEAD")
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException noGit) {
            return Optional.empty();
        }
        final String output = new String(git.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(git.waitFor(10, TimeUnit.SECONDS)).isTrue();
        return git.exitValue() == 0 ? Optional.of(output) : Optional.empty();
    }
}
