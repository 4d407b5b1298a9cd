package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import tools.jackson.databind.json.JsonMapper;

/**
 * Runs a script of {@code integration-tests/node} (Node's {@code ws} package, an independent client)
 * and returns the one JSON object it prints. Missing {@code node_modules} is a failure, not a skip:
 * CI installs it ({@code .ci/run} runs {@code npm ci}).
 */
final class NodeScript {

    private NodeScript() {}

    /** Runs {@code node SCRIPT ARGS…}; asserts it exits 0 within 30 s and printed one JSON object. */
    static Map<String, Object> run(String script, String... args) throws Exception {
        final Path node = WsguardProcess.root().resolve("integration-tests/node");
        assertThat(node.resolve("node_modules/ws/package.json"))
                .as("Node's ws package is not installed: run `npm ci` in %s (.ci/run does)", node)
                .isRegularFile();
        final List<String> command = new ArrayList<>(List.of("node", script));
        command.addAll(List.of(args));
        final Process process = new ProcessBuilder(command)
                .directory(node.toFile())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        final String out;
        try {
            out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        } finally {
            process.destroyForcibly();
        }
        assertThat(process.exitValue()).as("node %s: %s", script, out).isZero();
        // Jackson reads a JSON object as a Map with String keys; Map.class cannot say so.
        @SuppressWarnings("unchecked")
        final Map<String, Object> result = JsonMapper.builder().build().readValue(out.strip(), Map.class);
        return result;
    }
}
