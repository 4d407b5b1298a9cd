package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.AuditLines;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.SchemaChecked;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * The built {@code proxy/target/wsguard.jar} as a separate process: writes a policy into a
 * directory, starts {@code java -jar wsguard.jar run -c policy.yaml}, waits for the ready lines
 * (README, CLI: on stdout, or on stderr with {@code audit.sink: stdout}) and reads the listener and
 * admin URLs back from them. {@link #close()} sends SIGTERM,
 * waits, then kills.
 */
final class WsguardProcess implements AutoCloseable {

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);

    private final Process process;
    private final Path audit;
    private final List<String> stdout = new CopyOnWriteArrayList<>();
    /** The ready lines ({@code wsguard: listening on …}), from stdout or stderr. */
    private final List<String> ready = new CopyOnWriteArrayList<>();
    // Appended by the pump thread while test threads read it: StringBuffer's locking is the point.
    @SuppressWarnings("JdkObsolete")
    private final StringBuffer stderr = new StringBuffer();

    private final List<URI> listeners = new ArrayList<>();
    private URI admin;

    private WsguardProcess(Process process, Path audit) {
        this.process = process;
        this.audit = audit;
    }

    /** The jar under test, from failsafe's {@code wsguard.jar} property. */
    static Path jar() {
        final String jar = System.getProperty("wsguard.jar");
        assertThat(jar).as("system property wsguard.jar (set by failsafe)").isNotNull();
        final Path path = Path.of(jar).toAbsolutePath().normalize();
        assertThat(path)
                .as("the built jar; run mvn -pl proxy -am package first")
                .isRegularFile();
        return path;
    }

    /** The repository root, from failsafe's {@code wsguard.root} property. */
    static Path root() {
        return Path.of(System.getProperty("wsguard.root", ".."))
                .toAbsolutePath()
                .normalize();
    }

    /** Writes {@code policy} to {@code policy.yaml} in its directory and runs it; waits for the ready lines. */
    static WsguardProcess start(PolicyText policy) throws Exception {
        return start(policy.dir(), policy.text());
    }

    /** Writes {@code policyYaml} to {@code dir/policy.yaml} and runs it; waits for the ready lines. */
    static WsguardProcess start(Path dir, String policyYaml) throws Exception {
        return start(dir, policyYaml, Map.of());
    }

    /** As {@link #start(Path, String)}, with {@code env} added to the process's environment. */
    static WsguardProcess start(Path dir, String policyYaml, Map<String, String> env) throws Exception {
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, policyYaml, StandardCharsets.UTF_8);
        // Every caller expects the run to accept it: then the policy schema must accept it too.
        SchemaChecked.assertValid(file);
        final ProcessBuilder builder = command(dir, "run", "-c", file.toString());
        builder.environment().putAll(env);
        final Process process = builder.start();
        final WsguardProcess proxy = new WsguardProcess(process, dir.resolve("audit.jsonl"));
        pump(process.getInputStream(), line -> {
            proxy.stdout.add(line);
            if (line.startsWith("wsguard: ")) {
                proxy.ready.add(line);
            }
        });
        pump(process.getErrorStream(), line -> {
            proxy.stderr.append(line).append('\n');
            // With audit.sink: stdout the ready lines come on stderr, keeping stdout for audit lines.
            if (line.startsWith("wsguard: ")) {
                proxy.ready.add(line);
            }
        });
        try {
            await().atMost(READY_TIMEOUT).pollInterval(Duration.ofMillis(20)).until(() -> {
                if (!process.isAlive()) {
                    throw new AssertionError("wsguard exited with " + process.exitValue() + " before it was ready:\n"
                            + proxy.stderr + "\npolicy:\n" + policyYaml);
                }
                return proxy.ready.stream().anyMatch(l -> l.startsWith("wsguard: audit log at "));
            });
        } catch (RuntimeException | AssertionError e) {
            proxy.close();
            throw e;
        }
        for (String line : proxy.ready) {
            if (line.startsWith("wsguard: listening on ")) {
                proxy.listeners.add(URI.create(
                        line.substring("wsguard: listening on ".length()).trim()));
            } else if (line.startsWith("wsguard: admin on ")) {
                proxy.admin =
                        URI.create(line.substring("wsguard: admin on ".length()).trim());
            }
        }
        assertThat(proxy.listeners).as("listener lines: %s", proxy.ready).isNotEmpty();
        return proxy;
    }

    /** {@code java -jar wsguard.jar ARGS} in {@code dir}, not started. */
    static ProcessBuilder command(Path dir, String... args) {
        final List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xmx256m");
        command.add("-jar");
        command.add(jar().toString());
        command.addAll(List.of(args));
        return new ProcessBuilder(command).directory(dir.toFile());
    }

    /** A finished run of a one-shot command ({@code check}, …). */
    record Result(int exit, String stdout, String stderr) {}

    /** Runs {@code java -jar wsguard.jar ARGS} to completion (30 s at most). */
    static Result runToCompletion(Path dir, String... args) throws Exception {
        final Path out = Files.createTempFile(dir, "out", ".txt");
        final Path err = Files.createTempFile(dir, "err", ".txt");
        final Process process = command(dir, args)
                .redirectOutput(out.toFile())
                .redirectError(err.toFile())
                .start();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("wsguard " + String.join(" ", args) + " did not finish in 30 s");
        }
        return new Result(process.exitValue(), Files.readString(out), Files.readString(err));
    }

    /** Hands each line the process writes on {@code in} to {@code sink}, on a daemon thread. */
    static void pump(InputStream in, java.util.function.Consumer<String> sink) {
        final Thread thread = new Thread(
                () -> {
                    try (BufferedReader reader =
                            new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                        String line;
                        while ((line = reader.readLine()) != null) {
                            sink.accept(line);
                        }
                    } catch (IOException e) {
                        // The process went away; nothing more to read.
                    }
                },
                "wsguard-pump");
        thread.setDaemon(true);
        thread.start();
    }

    /** The i-th listener's base URL, {@code ws://127.0.0.1:PORT} or {@code wss://…}. */
    URI listener(int i) {
        return listeners.get(i);
    }

    /** {@code PATH} on the first listener. */
    URI uri(String path) {
        return listeners.get(0).resolve(path);
    }

    int port() {
        return listeners.get(0).getPort();
    }

    URI admin() {
        return admin;
    }

    Process process() {
        return process;
    }

    String stderr() {
        return stderr.toString();
    }

    List<String> stdout() {
        return stdout;
    }

    /** Every audit line written so far, parsed. */
    List<Map<String, Object>> auditLines() {
        try {
            return AuditLines.read(audit);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            // A line being written right now; the next poll reads it whole.
            return List.of();
        }
    }

    /** Waits (the audit log merges a reason per connection over one second) for a line with this reason. */
    Map<String, Object> awaitAudit(String reason) {
        return awaitAudit(line -> reason.equals(line.get("reason")), "reason " + reason);
    }

    Map<String, Object> awaitAudit(Predicate<Map<String, Object>> match, String what) {
        final java.util.concurrent.atomic.AtomicReference<Map<String, Object>> found =
                new java.util.concurrent.atomic.AtomicReference<>();
        try {
            await().atMost(Duration.ofSeconds(10))
                    .pollInterval(Duration.ofMillis(50))
                    .until(() -> {
                        for (Map<String, Object> line : auditLines()) {
                            if (match.test(line)) {
                                found.set(line);
                                return true;
                            }
                        }
                        return false;
                    });
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            throw new AssertionError("no audit line with " + what + " in " + auditLines() + "\nstderr:\n" + stderr, e);
        }
        return found.get();
    }

    /** Sends SIGTERM (the JDK's {@code destroy()} on Unix). */
    void terminate() {
        process.destroy();
    }

    /** Waits for the exit; -1 if still running after {@code timeout}. */
    int awaitExit(Duration timeout) throws InterruptedException {
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
    }

    /** The process's resident set size, from {@code /proc/PID/status}, in bytes. */
    long rssBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(process.pid()), "status"))) {
            if (line.startsWith("VmRSS:")) {
                final String[] parts = line.substring(6).trim().split("\\s+", -1);
                return Long.parseLong(parts[0]) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/" + process.pid() + "/status");
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(35, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        }
    }
}
