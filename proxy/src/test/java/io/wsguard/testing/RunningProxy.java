package io.wsguard.testing;

import io.wsguard.policy.PolicyLoader;
import io.wsguard.server.ProxyServer;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.json.JsonMapper;

/**
 * A real proxy started in-process from policy text, on an ephemeral port, with its audit log in a
 * temporary directory. {@code ${UPSTREAM}} in the routes text is replaced by the given upstream URI.
 */
public final class RunningProxy implements AutoCloseable {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final ProxyServer server;
    private final Path audit;

    private RunningProxy(ProxyServer server, Path audit) {
        this.server = server;
        this.audit = audit;
    }

    /** Starts a proxy with one plain listener, an audit file and {@code routes} (YAML, a list). */
    public static RunningProxy start(Path dir, String routesYaml, String extraYaml) throws Exception {
        return start(dir, routesYaml, extraYaml, "");
    }

    /** As above, with more {@code audit:} keys, e.g. {@code "sampleBytes: 16"}. */
    public static RunningProxy start(Path dir, String routesYaml, String extraYaml, String auditOptions) throws Exception {
        final Path audit = dir.resolve("audit.jsonl");
        final String policy = "version: 1\n"
                + "listeners:\n  - { host: 127.0.0.1, port: 0 }\n"
                + "audit: { sink: file, path: " + audit + (auditOptions.isEmpty() ? "" : ", " + auditOptions) + " }\n"
                + extraYaml
                + "routes:\n" + routesYaml.indent(2);
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, policy, StandardCharsets.UTF_8);
        final ProxyServer server = new ProxyServer(PolicyLoader.load(file, Map.of()));
        server.start();
        return new RunningProxy(server, audit);
    }

    public URI uri(String path) {
        return URI.create("ws://127.0.0.1:" + server.port(0) + path);
    }

    public int port() {
        return server.port(0);
    }

    public ProxyServer server() {
        return server;
    }

    /** Every audit line so far, parsed, after flushing the log's open one-second windows. */
    public List<Map<String, Object>> auditLines() throws Exception {
        server.flushAudit();
        final List<Map<String, Object>> lines = new ArrayList<>();
        if (!Files.exists(audit)) {
            return lines;
        }
        for (String line : Files.readAllLines(audit, StandardCharsets.UTF_8)) {
            if (!line.isBlank()) {
                @SuppressWarnings("unchecked")
                final Map<String, Object> parsed = JSON.readValue(line, Map.class);
                lines.add(parsed);
            }
        }
        return lines;
    }

    @Override
    public void close() {
        try {
            server.stop();
        } catch (Exception e) {
            throw new IllegalStateException("proxy did not stop", e);
        }
    }
}
