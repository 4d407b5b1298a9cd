package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** README, CLI: {@code check} and {@code run} of the built jar on the example policies and on a broken one. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CheckCommandIT {

    private static final String BROKEN = """
            version: 1
            listeners:
              - port: 8080
                bogus: 1
            routes:
              - name: r
                match: { path: /x }
                upstream: { targets: ["ws://127.0.0.1:9/x"], connectTimeout: 5 parsecs }
                auth: none
            """;

    @TempDir
    Path dir;

    static Stream<String> examplePolicies() throws IOException {
        try (Stream<Path> files = Files.list(WsguardProcess.root().resolve("policies"))) {
            return files
                    .map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".yaml"))
                    .sorted()
                    .toList()
                    .stream();
        }
    }

    /** The examples next to a generated {@code certs/dev}, as in the repository after {@code demo}. */
    private Path exampleCopy(String name) throws IOException {
        DevCerts.ensure(dir.resolve("certs/dev"));
        DevCerts.ensureJwtKey(dir.resolve("certs/dev"));
        final Path policies = Files.createDirectories(dir.resolve("policies"));
        try (Stream<Path> files = Files.list(WsguardProcess.root().resolve("policies"))) {
            for (Path file : files.toList()) {
                if (Files.isRegularFile(file)) {
                    Files.copy(file, policies.resolve(file.getFileName()));
                }
            }
        }
        final Path schemas = WsguardProcess.root().resolve("policies/schemas");
        if (Files.isDirectory(schemas)) {
            Files.createDirectories(policies.resolve("schemas"));
            try (Stream<Path> files = Files.list(schemas)) {
                for (Path file : files.toList()) {
                    Files.copy(file, policies.resolve("schemas").resolve(file.getFileName()));
                }
            }
        }
        return policies.resolve(name);
    }

    @ParameterizedTest
    @MethodSource("examplePolicies")
    void examplePolicyChecksOk(String name) throws Exception {
        final Path policy = exampleCopy(name);
        final WsguardProcess.Result result = WsguardProcess.runToCompletion(dir, "check", "-c", policy.toString());
        assertThat(result.exit())
                .as("exit; stdout:\n%s\nstderr:\n%s", result.stdout(), result.stderr())
                .isZero();
        assertThat(result.stdout().strip()).isEqualTo("OK");
    }

    @Test
    void brokenPolicyPrintsEveryProblemWithLineAndColumnAndExits2() throws Exception {
        final Path policy = dir.resolve("broken.yaml");
        Files.writeString(policy, BROKEN);
        final WsguardProcess.Result result = WsguardProcess.runToCompletion(dir, "check", "-c", policy.toString());
        assertThat(result.exit()).isEqualTo(2);
        final List<String> lines = (result.stdout() + result.stderr())
                .lines()
                .filter(l -> !l.isBlank())
                .toList();
        assertThat(lines).hasSizeGreaterThanOrEqualTo(2);
        assertThat(lines).allSatisfy(l -> assertThat(l).matches(".*broken\\.yaml:\\d+:\\d+: .+"));
        assertThat(lines)
                .anySatisfy(l -> assertThat(l).contains("broken.yaml:4:").containsIgnoringCase("bogus"));
        assertThat(lines)
                .anySatisfy(l -> assertThat(l).contains("broken.yaml:8:").contains("parsecs"));
        assertThat(result.stdout()).doesNotContain("OK");
    }

    @Test
    void runOnBrokenPolicyExits2WithoutStackTrace() throws Exception {
        final Path policy = dir.resolve("broken.yaml");
        Files.writeString(policy, BROKEN);
        final WsguardProcess.Result result = WsguardProcess.runToCompletion(dir, "run", "-c", policy.toString());
        assertThat(result.exit()).isEqualTo(2);
        assertThat(result.stderr())
                .contains("broken.yaml:4:")
                .doesNotContain("Exception")
                .doesNotContain("\tat ");
        assertThat(result.stdout()).doesNotContain("listening");
    }
}
