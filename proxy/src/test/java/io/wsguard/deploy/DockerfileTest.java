package io.wsguard.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.cli.WsguardCommand;
import io.wsguard.deploy.DeployFiles.Instruction;
import io.wsguard.policy.ListenerPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.Policy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The {@code Dockerfile}, read and checked without a Docker daemon (there is none in CI): a Maven
 * stage that builds the release tarball and a JRE stage that runs its launcher as a fixed non-root
 * user, with the documented paths, SIGTERM as the stop signal, and the ports of the Kubernetes policy
 * exposed.
 */
class DockerfileTest {

    @TempDir
    Path dir;

    @Test
    void buildsTheTarballWithMavenOnJdk17ThenUnpacksItIntoAJreImage() throws Exception {
        final List<Instruction> all = DeployFiles.dockerfile();
        final List<Instruction> from = only(all, "FROM");
        assertThat(from).extracting(Instruction::arguments).containsExactly("${MAVEN_IMAGE} AS build", "${JRE_IMAGE}");
        assertThat(only(all, "ARG"))
                .extracting(Instruction::arguments)
                .contains("MAVEN_IMAGE=maven:3.9-eclipse-temurin-17")
                .anyMatch(arg -> arg.matches("JRE_IMAGE=eclipse-temurin:(17|21)-jre"));

        final List<Instruction> build = stage(all, 0);
        final String run = only(build, "RUN").get(0).arguments();
        assertThat(run)
                .contains("mvn -B -ntp -pl proxy -am package -DskipTests")
                .contains("tar -xzf proxy/target/wsguard-*.tar.gz -C /dist")
                .contains("mv /dist/wsguard-* /dist/wsguard");
        assertThat(only(stage(all, 1), "COPY"))
                .extracting(Instruction::arguments)
                .containsExactly("--from=build /dist/wsguard /opt/wsguard");
    }

    @Test
    void runsTheTarballsLauncherWithTheDocumentedPolicyPathThroughTheRealCommandLine() throws Exception {
        final List<Instruction> runtime = stage(DeployFiles.dockerfile(), 1);
        // Exec form: the launcher is PID 1's program (it execs the JVM), so SIGTERM reaches the JVM.
        assertThat(only(runtime, "ENTRYPOINT")).hasSize(1);
        assertThat(only(runtime, "CMD")).hasSize(1);
        assertThat(DeployFiles.execForm("ENTRYPOINT")).containsExactly("/opt/wsguard/bin/wsguard");
        final List<String> cmd = DeployFiles.execForm("CMD");
        assertThat(cmd).containsExactly("run", "--config", DeployFiles.CONFIG_DIR + "policy.yaml");

        // The same words through wsguard's own command line: a renamed flag would fail here.
        final CommandLine.ParseResult parsed = WsguardCommand.commandLine().parseArgs(cmd.toArray(String[]::new));
        assertThat(parsed.subcommand().commandSpec().name()).isEqualTo("run");
        assertThat(parsed.subcommand().<Path>matchedOptionValue("--config", null))
                .isEqualTo(Path.of("/etc/wsguard/policy.yaml"));
    }

    @Test
    void runsAsAFixedNonRootUserAndStopsWithSigterm() throws Exception {
        final List<Instruction> runtime = stage(DeployFiles.dockerfile(), 1);
        assertThat(only(runtime, "USER")).extracting(Instruction::arguments).containsExactly("10001:10001");
        assertThat(only(runtime, "STOPSIGNAL"))
                .extracting(Instruction::arguments)
                .containsExactly("SIGTERM");
        assertThat(only(runtime, "RUN").get(0).arguments())
                .contains("groupadd --system --gid 10001 wsguard")
                .contains("useradd --system --uid 10001 --gid 10001");
        // Read-only root: no hsperfdata file under /tmp (the launcher passes JAVA_OPTS to the JVM).
        assertThat(only(runtime, "ENV")).hasSize(1);
        assertThat(DeployFiles.imageJavaOpts()).isEqualTo("-XX:-UsePerfData");
    }

    @Test
    void exposesExactlyTheListenerAdminAndProbesPortsOfTheKubernetesPolicy() throws Exception {
        final LoadedPolicy loaded = DeployFiles.kubernetesPolicy(dir);
        final Policy policy = loaded.policy();
        final Set<Integer> ports = new TreeSet<>();
        policy.listeners().stream().map(ListenerPolicy::port).forEach(ports::add);
        ports.add(policy.admin().orElseThrow().port());
        ports.add(policy.admin().orElseThrow().probes().orElseThrow().port());

        final Set<Integer> exposed = only(stage(DeployFiles.dockerfile(), 1), "EXPOSE").stream()
                .flatMap(expose -> Arrays.stream(expose.arguments().split("\\s+")))
                .map(Integer::valueOf)
                .collect(Collectors.toCollection(TreeSet::new));
        assertThat(exposed).isEqualTo(ports).containsExactly(8443, 9090, 9091);
    }

    @Test
    void theBuildContextLeavesOutBuildOutputAndKeysButKeepsGit() throws Exception {
        final List<String> ignored =
                Files.readAllLines(DeployFiles.ROOT.resolve(".dockerignore"), StandardCharsets.UTF_8).stream()
                        .map(String::strip)
                        .filter(line -> !line.isEmpty() && !line.startsWith("#"))
                        .toList();
        assertThat(ignored).contains("**/target/", "**/node_modules/", "certs/dev/", "**/*.key", "**/*.p12");
        // The build reads the commit that --version names from .git.
        assertThat(ignored).noneMatch(line -> line.startsWith(".git"));
    }

    /** The instructions of stage {@code index} (0 the first FROM), without its FROM. */
    private static List<Instruction> stage(List<Instruction> all, int index) {
        int seen = -1;
        int start = -1;
        int end = all.size();
        for (int i = 0; i < all.size(); i++) {
            if (all.get(i).keyword().equals("FROM")) {
                seen++;
                if (seen == index) {
                    start = i + 1;
                } else if (seen == index + 1) {
                    end = i;
                    break;
                }
            }
        }
        assertThat(start).as("stage " + index).isPositive();
        return all.subList(start, end);
    }

    private static List<Instruction> only(List<Instruction> instructions, String keyword) {
        return instructions.stream().filter(i -> i.keyword().equals(keyword)).toList();
    }
}
