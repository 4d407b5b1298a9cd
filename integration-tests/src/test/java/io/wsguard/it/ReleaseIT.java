package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.wsguard.cli.WsguardCommand;
import io.wsguard.policy.PolicyLoader;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * The release as an operator gets it: {@code wsguard-VERSION.tar.gz} from the normal build, unpacked
 * into a temporary folder, run through its {@code bin/wsguard} launcher as a real process; the SBOM
 * and checksums next to it; the systemd unit it carries.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ReleaseIT {

    private static final String VERSION = System.getProperty("wsguard.version");
    /** The launcher's exit code when it finds no Java it can use. */
    private static final int NO_JAVA = 127;

    @TempDir
    static Path unpacked;

    static Path home;

    @TempDir
    Path dir;

    @BeforeAll
    static void unpackTheTarball() throws Exception {
        assertThat(VERSION).as("failsafe passes wsguard.version").isNotBlank();
        final Path tarball = release("wsguard-" + VERSION + ".tar.gz");
        final Result tar = run(unpacked, Map.of(), "tar", "-xzf", tarball.toString());
        assertThat(tar.exit()).as("tar: %s", tar.stderr()).isZero();
        home = unpacked.resolve("wsguard-" + VERSION);
    }

    @Test
    void theTarballHoldsTheLauncherTheJarPoliciesTheUnitAndTheTexts() throws Exception {
        assertThat(home.resolve("bin/wsguard")).isExecutable();
        assertThat(home.resolve("lib/wsguard.jar")).isRegularFile();
        assertThat(home.resolve("policies/plain-ws.yaml")).isRegularFile();
        assertThat(home.resolve("policies/schemas")).isDirectory();
        assertThat(home.resolve("deploy/systemd/wsguard.service")).isRegularFile();
        assertThat(home.resolve("README.md"))
                .hasSameTextualContentAs(WsguardProcess.root().resolve("README.md"));
        assertThat(home.resolve("LICENSE"))
                .hasSameTextualContentAs(WsguardProcess.root().resolve("LICENSE"));
        assertThat(Files.readString(home.resolve("LICENSE")))
                .contains("Apache License", "Version 2.0, January 2004", "END OF TERMS AND CONDITIONS");
        assertThat(home.resolve("NOTICE")).isRegularFile();
        // The policy schema ships once the repository has it (another part of the same release).
        final Path schema = WsguardProcess.root().resolve("schema/wsguard-policy.schema.json");
        if (Files.exists(schema)) {
            assertThat(home.resolve("schema/wsguard-policy.schema.json")).hasSameTextualContentAs(schema);
        }
    }

    @Test
    void versionSaysThePomsVersion() throws Exception {
        final Result version = launcher(Map.of(), "--version");

        assertThat(version.exit()).as("stderr: %s", version.stderr()).isZero();
        assertThat(version.stdout().strip()).matches("wsguard " + VERSION.replace(".", "\\.") + " \\(commit \\w+\\)");
    }

    @Test
    void checkAcceptsAnExamplePolicyFromTheTarball() throws Exception {
        final Result check = launcher(
                Map.of(), "check", "-c", home.resolve("policies/plain-ws.yaml").toString());

        assertThat(check.exit())
                .as("stdout: %s%nstderr: %s", check.stdout(), check.stderr())
                .isZero();
    }

    @Test
    void runServesThroughASymlinkedLauncherReportsItsVersionAndExits0OnSigterm() throws Exception {
        // As /usr/local/bin/wsguard -> /opt/wsguard/bin/wsguard: the launcher finds lib/ through the link.
        final Path link = Files.createDirectories(dir.resolve("bin")).resolve("wsguard");
        Files.createSymbolicLink(link, home.resolve("bin/wsguard"));
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient()) {
            final PolicyText policy = PolicyText.in(dir)
                    .extra("admin: { host: 127.0.0.1, port: 0 }\nproxy: { drainTimeout: 2s }\n")
                    .routes("""
                            - name: echo
                              match: { path: /echo }
                              upstream: { targets: [%s] }
                              auth: none
                            """.formatted(upstream.uri("/echo")));
            final Path file = dir.resolve("policy.yaml");
            Files.writeString(file, policy.text());
            final ProcessBuilder builder =
                    new ProcessBuilder(link.toString(), "run", "-c", file.toString()).directory(dir.toFile());
            builder.environment().put("JAVA_OPTS", "-Xmx128m -Dwsguard.releaseIT=marker");
            final Process process = builder.start();
            final List<String> stdout = new CopyOnWriteArrayList<>();
            final StringBuilder stderr = new StringBuilder();
            WsguardProcess.pump(process.getInputStream(), stdout::add);
            WsguardProcess.pump(process.getErrorStream(), line -> {
                synchronized (stderr) {
                    stderr.append(line).append('\n');
                }
            });
            try {
                await().atMost(Duration.ofSeconds(60)).until(() -> {
                    assertThat(process.isAlive())
                            .as("wsguard exited early: %s", stderr)
                            .isTrue();
                    return stdout.stream().anyMatch(l -> l.startsWith("wsguard: audit log at "));
                });
                final URI listener = URI.create(line(stdout, "wsguard: listening on "));
                final URI admin = URI.create(line(stdout, "wsguard: admin on "));

                // The launcher exec'd the JVM: the process started is java itself, so signals reach it.
                final List<String> cmdline = cmdline(process.pid());
                assertThat(Path.of(cmdline.get(0)).getFileName()).hasToString("java");
                // JAVA_OPTS reaches the JVM after the defaults, so the operator's flags win.
                assertThat(cmdline).contains("-XX:+UseG1GC", "-XX:MaxRAMPercentage=50", "-XX:+ExitOnOutOfMemoryError");
                assertThat(cmdline.indexOf("-Dwsguard.releaseIT=marker"))
                        .isGreaterThan(cmdline.indexOf("-XX:MaxRAMPercentage=50"));
                assertThat(cmdline.indexOf("-Xmx128m")).isGreaterThan(cmdline.indexOf("-XX:MaxRAMPercentage=50"));
                assertThat(cmdline.subList(cmdline.indexOf("-jar"), cmdline.size()))
                        .containsExactly(
                                "-jar",
                                home.resolve("lib/wsguard.jar").toRealPath().toString(),
                                "run",
                                "-c",
                                file.toString());

                final HttpResponse<String> health = HttpClient.newHttpClient()
                        .send(
                                HttpRequest.newBuilder(admin.resolve("/healthz"))
                                        .timeout(Duration.ofSeconds(5))
                                        .build(),
                                HttpResponse.BodyHandlers.ofString());
                assertThat(health.statusCode()).isEqualTo(200);
                assertThat(health.body()).startsWith("ok wsguard " + VERSION + " (commit ");

                final TestClient.Recorder ws = client.connect(listener.resolve("/echo"));
                ws.send("through the release");
                assertThat(ws.next()).isEqualTo("through the release");

                process.destroy(); // SIGTERM
                assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
                assertThat(process.exitValue()).as("stderr: %s", stderr).isZero();
                assertThat(ws.awaitClose()).isTrue();
                assertThat(ws.closeCode).isEqualTo(1001);
            } finally {
                process.destroyForcibly();
            }
        }
    }

    @Test
    void withoutJavaTheLauncherSaysWhatToInstallAndExits127() throws Exception {
        // A PATH with the few tools the launcher uses and no java; JAVA_HOME unset.
        final Path tools = Files.createDirectories(dir.resolve("tools"));
        for (String tool : List.of("sh", "dirname", "readlink", "sed", "head")) {
            Files.createSymbolicLink(tools.resolve(tool), which(tool));
        }
        final Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", tools.toString());
        env.put("JAVA_HOME", null);

        final Result none = launcher(env, "--version");

        assertThat(none.exit()).isEqualTo(NO_JAVA);
        assertThat(none.stdout()).isEmpty();
        assertThat(none.stderr())
                .startsWith("wsguard: no Java found: JAVA_HOME is not set, and there is no java on PATH")
                .contains("wsguard needs Java 17 or later", "apt-get install openjdk-17-jre-headless", "JAVA_HOME");

        env.put("JAVA_HOME", dir.resolve("no-such-jdk").toString());
        final Result wrongHome = launcher(env, "--version");

        assertThat(wrongHome.exit()).isEqualTo(NO_JAVA);
        assertThat(wrongHome.stderr())
                .startsWith("wsguard: JAVA_HOME is " + dir.resolve("no-such-jdk") + ", and it has no bin/java.")
                .contains("wsguard needs Java 17 or later");
    }

    @Test
    void aJavaOlderThan17IsRefusedByName() throws Exception {
        // A runtime that says it is 11 when asked (java -version), and one whose release file says 8.
        final Path old = Files.createDirectories(dir.resolve("jdk-11/bin"));
        final Path java = old.resolve("java");
        Files.writeString(java, "#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        final Result eleven = launcher(Map.of("JAVA_HOME", old.getParent().toString()), "--version");

        assertThat(eleven.exit()).isEqualTo(NO_JAVA);
        assertThat(eleven.stderr())
                .startsWith("wsguard: " + java + " is Java 11.0.2, too old.")
                .contains("wsguard needs Java 17 or later");

        Files.writeString(old.getParent().resolve("release"), "JAVA_VERSION=\"1.8.0_392\"\n");
        final Result eight = launcher(Map.of("JAVA_HOME", old.getParent().toString()), "--version");

        assertThat(eight.exit()).isEqualTo(NO_JAVA);
        assertThat(eight.stderr()).startsWith("wsguard: " + java + " is Java 1.8.0_392, too old.");
    }

    @Test
    void aCollectorInJavaOptsReplacesTheDefaultG1() throws Exception {
        // Two collectors on one command line stop the JVM ("Conflicting collector combinations").
        final Result serial = launcher(Map.of("JAVA_OPTS", "-XX:+UseSerialGC"), "--version");

        assertThat(serial.exit()).as("stderr: %s", serial.stderr()).isZero();
        assertThat(serial.stdout()).startsWith("wsguard " + VERSION);
    }

    @Test
    void checksumsVerifyWithSha256sum() throws Exception {
        final List<String> names = new ArrayList<>(List.of("wsguard-" + VERSION + ".tar.gz.sha256"));
        if (Files.exists(release().resolve("wsguard-" + VERSION + ".cdx.json"))) {
            names.add("wsguard-" + VERSION + ".cdx.json.sha256");
        }
        for (String name : names) {
            assertThat(Files.readString(release(name)))
                    .matches("[0-9a-f]{64}  " + name.replace(".sha256", "").replace(".", "\\.") + "\\R?");
            final Result check = run(release(), Map.of(), "sha256sum", "-c", name);
            assertThat(check.exit()).as("%s%s", check.stdout(), check.stderr()).isZero();
            assertThat(check.stdout()).isEqualTo(name.replace(".sha256", "") + ": OK\n");
        }
    }

    @Test
    void theSbomIsCycloneDxJsonListingTheBundledLibraries() throws Exception {
        assumeFalse(
                "offline=true".equals(System.getProperty("wsguard.build")),
                "cyclonedx-maven-plugin writes no SBOM in an offline build (mvn -o)");
        final JsonNode bom = new ObjectMapper()
                .readTree(release("wsguard-" + VERSION + ".cdx.json").toFile());

        assertThat(bom.path("bomFormat").asString()).isEqualTo("CycloneDX");
        assertThat(bom.path("specVersion").asString()).matches("1\\.\\d+");
        assertThat(bom.at("/metadata/component/version").asString()).isEqualTo(VERSION);
        assertThat(bom.at("/metadata/component/licenses/0/license/id").asString())
                .isEqualTo("Apache-2.0");
        final Map<String, JsonNode> components = new LinkedHashMap<>();
        bom.path("components").forEach(c -> components.put(c.path("name").asString(), c));
        assertThat(components).containsKeys("jetty-server", "nimbus-jose-jwt", "lettuce-core", "logback-classic");
        assertThat(components.get("jetty-server").path("version").asString()).isEqualTo("12.1.14");
        assertThat(components.get("nimbus-jose-jwt").path("purl").asString()).startsWith("pkg:maven/com.nimbusds/");
        assertThat(components.values())
                .as("test-only libraries stay out of the SBOM")
                .noneMatch(c -> c.path("name").asString().startsWith("junit"));
    }

    @Test
    void theSystemdUnitRunsTheTarballsLauncherAndWaitsForTheDrain() throws Exception {
        final Map<String, List<String>> unit = unit(home.resolve("deploy/systemd/wsguard.service"));

        final List<String> execStart = List.of(single(unit, "ExecStart").split(" +"));
        assertThat(execStart.get(0)).isEqualTo("/opt/wsguard/bin/wsguard");
        assertThat(home.resolve(Path.of("/opt/wsguard").relativize(Path.of(execStart.get(0)))))
                .as("the launcher's place in the tarball, unpacked as /opt/wsguard")
                .isExecutable();
        // The arguments are the CLI's own: picocli parses them as `run` with the fixed policy path.
        final List<String> args = execStart.subList(1, execStart.size());
        final CommandLine.ParseResult parsed = WsguardCommand.commandLine().parseArgs(args.toArray(String[]::new));
        assertThat(parsed.subcommand().commandSpec().name()).isEqualTo("run");
        final Path config = parsed.subcommand().matchedOptionValue("--config", null);
        assertThat(config).isEqualTo(Path.of("/etc/wsguard/policy.yaml"));

        assertThat(single(unit, "ExecReload")).isEqualTo("/bin/kill -HUP $MAINPID");
        assertThat(single(unit, "KillSignal")).isEqualTo("SIGTERM");
        // The stop waits out the default drain (a policy without proxy.drainTimeout) before SIGKILL.
        final Path minimal = dir.resolve("minimal.yaml");
        Files.writeString(minimal, PolicyText.in(dir).routes("""
                - name: r
                  match: { path: /r }
                  upstream: { targets: ["ws://127.0.0.1:9/r"] }
                  auth: none
                """).text());
        final Duration drain = PolicyLoader.load(minimal).policy().proxy().drainTimeout();
        final Duration stop =
                Duration.ofSeconds(Long.parseLong(single(unit, "TimeoutStopSec").replace("s", "")));
        assertThat(stop).isGreaterThanOrEqualTo(drain.plusSeconds(10));

        assertThat(single(unit, "Restart")).isEqualTo("on-failure");
        assertThat(single(unit, "User")).isEqualTo("wsguard");
        assertThat(single(unit, "ReadWritePaths")).isEqualTo("/var/log/wsguard");
        assertThat(single(unit, "CapabilityBoundingSet")).isEqualTo("CAP_NET_BIND_SERVICE");
        assertThat(single(unit, "AmbientCapabilities")).isEqualTo("CAP_NET_BIND_SERVICE");
        assertThat(single(unit, "SystemCallFilter")).isEqualTo("@system-service");
        for (String yes : List.of(
                "NoNewPrivileges",
                "ProtectHome",
                "PrivateTmp",
                "PrivateDevices",
                "ProtectKernelTunables",
                "ProtectKernelModules",
                "ProtectKernelLogs",
                "ProtectControlGroups",
                "LockPersonality")) {
            assertThat(single(unit, yes)).as(yes).isEqualTo("yes");
        }
        assertThat(single(unit, "ProtectSystem")).isEqualTo("strict");
        assertThat(single(unit, "RestrictAddressFamilies")).contains("AF_INET", "AF_INET6");
        assertThat(unit).as("the JIT writes and runs code").doesNotContainKey("MemoryDenyWriteExecute");
    }

    @Test
    void systemdAnalyzeVerifiesTheUnitWhereItIsInstalled() throws Exception {
        final Path analyze = Stream.of("/usr/bin/systemd-analyze", "/bin/systemd-analyze")
                .map(Path::of)
                .filter(Files::isExecutable)
                .findFirst()
                .orElse(null);
        assumeTrue(analyze != null, "systemd-analyze is not installed here");
        // The unit as installed, with ExecStart at the launcher unpacked here (no /opt/wsguard on this machine).
        final Path copy = dir.resolve("wsguard.service");
        Files.writeString(
                copy,
                Files.readString(home.resolve("deploy/systemd/wsguard.service"))
                        .replace(
                                "/opt/wsguard/bin/wsguard",
                                home.resolve("bin/wsguard").toString()));

        final Result verify = run(dir, Map.of(), analyze.toString(), "verify", copy.toString());

        assertThat(verify.exit()).as("%s%s", verify.stdout(), verify.stderr()).isZero();
        assertThat(verify.stdout() + verify.stderr()).isEmpty();
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private record Result(int exit, String stdout, String stderr) {}

    private static Path release() {
        return Path.of(System.getProperty("wsguard.release.dir"))
                .toAbsolutePath()
                .normalize();
    }

    private static Path release(String name) {
        final Path file = release().resolve(name);
        assertThat(file).as("run the proxy module's package phase first").isRegularFile();
        return file;
    }

    private Result launcher(Map<String, String> env, String... args) throws Exception {
        final List<String> command = new ArrayList<>();
        command.add(home.resolve("bin/wsguard").toString());
        command.addAll(List.of(args));
        return run(dir, env, command.toArray(String[]::new));
    }

    /** Runs a command to completion (60 s at most); a null value in {@code env} removes that variable. */
    private static Result run(Path workDir, Map<String, String> env, String... command) throws Exception {
        final Path out = Files.createTempFile(workDir, "out", ".txt");
        final Path err = Files.createTempFile(workDir, "err", ".txt");
        final ProcessBuilder builder = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectOutput(out.toFile())
                .redirectError(err.toFile());
        env.forEach((name, value) -> {
            if (value == null) {
                builder.environment().remove(name);
            } else {
                builder.environment().put(name, value);
            }
        });
        final Process process = builder.start();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish in 60 s");
        }
        final Result result = new Result(process.exitValue(), Files.readString(out), Files.readString(err));
        Files.delete(out);
        Files.delete(err);
        return result;
    }

    private static Path which(String tool) {
        for (String entry : System.getenv("PATH").split(":", -1)) {
            final Path candidate = Path.of(entry, tool);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        throw new AssertionError(tool + " is not on PATH");
    }

    private static List<String> cmdline(long pid) throws IOException {
        final String raw = Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"), StandardCharsets.UTF_8);
        // NUL after each argument, the last one included.
        return List.of(raw.substring(0, raw.length() - 1).split("\0", -1));
    }

    private static String line(List<String> lines, String prefix) {
        return lines.stream()
                .filter(l -> l.startsWith(prefix))
                .map(l -> l.substring(prefix.length()).trim())
                .findFirst()
                .orElseThrow(() -> new AssertionError("no line '" + prefix + "…' in " + lines));
    }

    /** A systemd unit's settings by key (every section; a key may repeat), comments and blanks left out. */
    private static Map<String, List<String>> unit(Path file) throws IOException {
        final Map<String, List<String>> settings = new LinkedHashMap<>();
        for (String raw : Files.readAllLines(file)) {
            final String l = raw.strip();
            if (l.isEmpty() || l.startsWith("#") || l.startsWith(";") || l.startsWith("[")) {
                continue;
            }
            final int eq = l.indexOf('=');
            assertThat(eq).as("a key=value line: %s", l).isPositive();
            settings.computeIfAbsent(l.substring(0, eq).strip(), k -> new ArrayList<>())
                    .add(l.substring(eq + 1).strip());
        }
        return settings;
    }

    private static String single(Map<String, List<String>> unit, String key) {
        assertThat(unit).containsKey(key);
        assertThat(unit.get(key)).as(key).hasSize(1);
        return unit.get(key).get(0);
    }
}
