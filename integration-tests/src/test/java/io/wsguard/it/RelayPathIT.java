package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * README, Policy file, Two relay paths: the released jar relays a plain route through the frame pump,
 * and {@code -Dwsguard.framePump=false} puts the same route on Jetty's sessions; both relay the same
 * bytes and report their path.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RelayPathIT {

    @TempDir
    Path dir;

    @Test
    void thePumpRelaysAPlainRouteAndTheSwitchPutsItOnSessions() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient()) {
            final String routes = """
                    - name: echo
                      match: { path: /echo }
                      upstream: { targets: [%s] }
                      auth: none
                      messages: { maxSize: 2MiB }
                    """.formatted(upstream.uri("/echo"));
            assertRelaysThrough(client, routes, Map.of(), "pump", dir.resolve("pump"));
            assertRelaysThrough(
                    client,
                    routes,
                    Map.of("JAVA_TOOL_OPTIONS", "-Dwsguard.framePump=false"),
                    "session",
                    dir.resolve("session"));
        }
    }

    private static void assertRelaysThrough(
            TestClient client, String routes, Map<String, String> env, String path, Path dir) throws Exception {
        Files.createDirectories(dir);
        final PolicyText policy = PolicyText.in(dir)
                .extra("admin: { host: 127.0.0.1, port: 0 }\n")
                .routes(routes);
        try (WsguardProcess proxy = WsguardProcess.start(policy.dir(), policy.text(), env)) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
            ws.send("hello ✓");
            assertThat(ws.next()).isEqualTo("hello ✓");
            final byte[] payload = new byte[1_000_000];
            new Random(7).nextBytes(payload);
            ws.session.sendBinary(ByteBuffer.wrap(payload), Callback.NOOP);
            assertThat((byte[]) ws.next()).isEqualTo(payload);

            final HttpResponse<String> connections = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(URI.create(proxy.admin() + "/admin/connections"))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
            assertThat(connections.body()).contains("\"path\":\"" + path + "\"");
            ws.session.close();
            assertThat(ws.awaitClose()).isTrue();
        }
    }
}
