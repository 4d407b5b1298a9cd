package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code json: { required: true }} without a schema, through a running proxy: every message must be
 * one well-formed JSON document, whatever its shape. Anything else closes with 1008
 * {@code invalid_json}, audited, and never reaches the upstream; JSON passes byte for byte.
 */
@Timeout(60)
class JsonRequiredTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: any-json
                  match: { path: /any-json }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { json: { required: true } }
                """.formatted(upstream.uri("/echo"))));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void wellFormedJsonOfAnyShapePassesByteForByte() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/any-json"));
        for (String json : new String[] {
            "{ \"any\" : [1, 2.50, \"x\", null, {\"deep\": true}] }", "[]", "\"just a string\"", "-0.0"
        }) {
            ws.send(json);
            assertThat(ws.next()).isEqualTo(json);
            assertThat(upstream.messages()).contains(json);
        }
        ws.session.close();
    }

    @Test
    void textThatIsNotJsonClosesWith1008InvalidJson() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/any-json"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        ws.send("{\"text\":\"not-json-marker\"} trailing");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String s && s.contains("not-json-marker"));
        final Map<String, Object> line = audited("not JSON: trailing content after the document at 1:28");
        assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("stage", "message")
                .containsEntry("action", "close")
                .containsEntry("closeCode", 1008);
    }

    @Test
    void aBinaryMessageClosesWith1008InvalidJson() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/any-json"));
        final UpstreamServer.Endpoint leg = upstream.newest();
        final byte[] json = "{\"binary-marker\":1}".getBytes(StandardCharsets.UTF_8);
        ws.session.sendBinary(ByteBuffer.wrap(json), Callback.NOOP);
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        assertThat(leg.awaitEnd()).isTrue();
        assertThat(upstream.messages()).noneMatch(m -> m instanceof byte[] b && Arrays.equals(b, json));
        assertThat(audited("binary message where JSON is required"))
                .containsEntry("event", "blocked")
                .containsEntry("closeCode", 1008);
    }

    private static Map<String, Object> audited(String detail) {
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("route", "any-json")
                        .containsEntry("reason", "invalid_json")
                        .containsEntry("detail", detail)));
        try {
            return proxy.auditLines().stream()
                    .filter(line -> detail.equals(line.get("detail")))
                    .reduce((a, b) -> b)
                    .orElseThrow();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
