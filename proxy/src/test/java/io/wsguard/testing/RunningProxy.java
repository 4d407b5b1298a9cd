package io.wsguard.testing;

import io.wsguard.server.ProxyServer;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A real proxy started in-process from a {@link PolicyText}, on an ephemeral port, with its audit log
 * in the policy's directory.
 */
public final class RunningProxy implements AutoCloseable {

    private final ProxyServer server;
    private final Path audit;

    private RunningProxy(ProxyServer server, Path audit) {
        this.server = server;
        this.audit = audit;
    }

    /** Writes {@code policy} to {@code policy.yaml} in its directory, loads it and starts the proxy. */
    public static RunningProxy start(PolicyText policy) throws Exception {
        return start(policy, Map.of());
    }

    /** As {@link #start(PolicyText)}, with {@code env} as the environment that {@code ${NAME}} reads. */
    public static RunningProxy start(PolicyText policy, Map<String, String> env) throws Exception {
        final Path file = policy.dir().resolve("policy.yaml");
        Files.writeString(file, policy.text(), StandardCharsets.UTF_8);
        final ProxyServer server = new ProxyServer(SchemaChecked.load(file, env));
        server.start();
        return new RunningProxy(server, policy.audit());
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
        return AuditLines.read(audit);
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
