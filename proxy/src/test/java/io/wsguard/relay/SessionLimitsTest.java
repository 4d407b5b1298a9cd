package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.exceptions.UpgradeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Session limits and handshake refusals of the relay core, against a running proxy. */
@Timeout(60)
class SessionLimitsTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: idle
                  match: { path: /idle }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { idleTimeout: 1s }
                - name: unfinished
                  match: { path: /unfinished }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { idleTimeout: 2s }
                  messages: { deny: [ { name: forbidden, pattern: "forbidden" } ] }
                - name: short
                  match: { path: /short }
                  upstream: { targets: [%1$s] }
                  auth: none
                  limits: { maxLifetime: 2s }
                - name: deflate
                  match: { path: /deflate }
                  upstream: { targets: [%1$s] }
                  auth: none
                  messages: { compression: allow }
                - name: plain
                  match: { path: /plain }
                  upstream: { targets: [%1$s] }
                  auth: none
                - name: dead
                  match: { path: /dead }
                  upstream: { targets: ["ws://127.0.0.1:1/nothing"], connectTimeout: 2s }
                  auth: none
                """.formatted(upstream.uri("/echo")))
                .extra("proxy: { maxConnections: 3 }\n"));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void idleConnectionIsClosedWith1001AndAudited() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/idle"));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1001);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("reason", "session_expired")
                        .containsEntry("route", "idle")));
    }

    /**
     * A message held for inspection that never gets its last fragment, while pings keep the socket
     * from idling: without a bound the proxy would hold its frames until maxLifetime.
     */
    @Test
    void aMessageLeftUnfinishedWhilePingsKeepTheSocketAliveIsClosedAfterTheIdleTimeout() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/unfinished"));
        final long started = System.nanoTime();
        ws.session.sendPartialText(
                "{\"type\":\"chat\",\"text\":\"", false, org.eclipse.jetty.websocket.api.Callback.NOOP);
        while (ws.closed.getCount() > 0 && System.nanoTime() - started < TimeUnit.SECONDS.toNanos(8)) {
            ws.session.sendPing(
                    java.nio.ByteBuffer.wrap(new byte[] {1}), org.eclipse.jetty.websocket.api.Callback.NOOP);
            ws.closed.await(300, TimeUnit.MILLISECONDS);
        }
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1001);
        assertThat(Duration.ofNanos(System.nanoTime() - started))
                .isBetween(Duration.ofMillis(1800), Duration.ofSeconds(6));
        assertThat(upstream.messages())
                .noneSatisfy(message -> assertThat(String.valueOf(message)).startsWith("{\"type\":\"chat\""));
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("stage", "session")
                        .containsEntry("reason", "session_expired")
                        .containsEntry("route", "unfinished")
                        .containsEntry("closeCode", 1001)
                        .containsEntry("detail", "message unfinished for 2s: its last fragment never came")));
    }

    @Test
    void connectionPastMaxLifetimeIsClosedWith1001EvenWhileBusyAndAudited() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/short"));
        final long started = System.nanoTime();
        while (ws.closed.getCount() > 0 && System.nanoTime() - started < TimeUnit.SECONDS.toNanos(8)) {
            ws.send("busy");
            ws.closed.await(100, TimeUnit.MILLISECONDS);
        }
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1001);
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofMillis(1500));
        // ProxySession.expire: the lifetime timer, not the idle one (10m by default on this route).
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "session")
                        .containsEntry("reason", "session_expired")
                        .containsEntry("route", "short")
                        .containsEntry("action", "close")
                        .containsEntry("closeCode", 1001)
                        .containsEntry("detail", "max lifetime 2s")));
    }

    @Test
    void compressionIsNegotiatedOnlyWhereAllowed() throws Exception {
        final Map<String, String> offer =
                Map.of("Sec-WebSocket-Extensions", "permessage-deflate, fragment;maxLength=1, identity");
        final TestClient.Recorder plain = client.connect(proxy.uri("/plain"), offer, List.of());
        assertThat(plain.session.getUpgradeResponse().getHeader("Sec-WebSocket-Extensions"))
                .isNull();
        plain.session.close();

        final TestClient.Recorder deflate = client.connect(proxy.uri("/deflate"), offer, List.of());
        assertThat(deflate.session.getUpgradeResponse().getHeader("Sec-WebSocket-Extensions"))
                .startsWith("permessage-deflate");
        final String text = "compressible ".repeat(1000);
        deflate.send(text);
        assertThat(deflate.next()).isEqualTo(text);
        deflate.session.close();
    }

    /** Bursts of compressed messages are batched and flushed through the deflate extension, in order both ways. */
    @Test
    void burstsOfCompressedMessagesArriveInOrder() throws Exception {
        final Map<String, String> offer = Map.of("Sec-WebSocket-Extensions", "permessage-deflate");
        final TestClient.Recorder deflate = client.connect(proxy.uri("/deflate"), offer, List.of());
        assertThat(deflate.session.getUpgradeResponse().getHeader("Sec-WebSocket-Extensions"))
                .startsWith("permessage-deflate");
        final List<String> sent = new java.util.ArrayList<>();
        for (int i = 0; i < 500; i++) {
            final String text = "deflated-" + i + " " + "abc".repeat(i % 50);
            sent.add(text);
            deflate.session.sendText(text, org.eclipse.jetty.websocket.api.Callback.NOOP);
        }
        for (String text : sent) {
            assertThat(deflate.next()).isEqualTo(text);
        }
        deflate.session.close();
    }

    @Test
    void plainHttpRequestGets426WithUpgradeHeader() throws Exception {
        final HttpResponse<String> response = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + proxy.port() + "/plain"))
                                .GET()
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(426);
        assertThat(response.headers().firstValue("Upgrade")).hasValue("websocket");
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "not_websocket")
                .containsEntry("status", 426)
                .containsEntry("route", "plain"));
    }

    @Test
    void foreignOriginIsRefusedWith403WithoutOriginSectionAndUpstreamSeesNothing() throws Exception {
        final int before = upstream.upgrades();
        final ExecutionException failure = assertThrows(ExecutionException.class, () -> client.connectAsync(
                        proxy.uri("/plain"), Map.of("Origin", "https://evil.example"))
                .get(10, TimeUnit.SECONDS));
        assertThat(((UpgradeException) failure.getCause()).getResponseStatusCode())
                .isEqualTo(403);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "origin_denied")
                .containsEntry("status", 403)
                .containsEntry("origin", "https://evil.example")
                .containsEntry("event", "blocked"));
        // Same host and port, other scheme: the page's own site (another port is not: SameOriginPortTest).
        client.connect(proxy.uri("/plain"), Map.of("Origin", "https://127.0.0.1:" + proxy.port()), List.of())
                .session
                .close();
    }

    @Test
    void unreachableUpstreamIs502AndAudited() throws Exception {
        final ExecutionException failure =
                assertThrows(ExecutionException.class, () -> client.connectAsync(proxy.uri("/dead"), Map.of())
                        .get(15, TimeUnit.SECONDS));
        assertThat(((UpgradeException) failure.getCause()).getResponseStatusCode())
                .isEqualTo(502);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "upstream_unavailable")
                .containsEntry("status", 502)
                .containsEntry("route", "dead"));
    }

    @Test
    void connectionsBeyondMaxConnectionsGet503() throws Exception {
        final int before = upstream.upgrades();
        final TestClient.Recorder a = client.connect(proxy.uri("/plain"));
        final TestClient.Recorder b = client.connect(proxy.uri("/plain"));
        final TestClient.Recorder c = client.connect(proxy.uri("/plain"));
        final ExecutionException failure =
                assertThrows(ExecutionException.class, () -> client.connectAsync(proxy.uri("/plain"), Map.of())
                        .get(10, TimeUnit.SECONDS));
        assertThat(((UpgradeException) failure.getCause()).getResponseStatusCode())
                .isEqualTo(503);
        assertThat(upstream.upgrades()).isEqualTo(before + 3);
        assertThat(proxy.auditLines())
                .anySatisfy(line ->
                        assertThat(line).containsEntry("reason", "unavailable").containsEntry("status", 503));
        a.session.close();
        b.session.close();
        c.session.close();
        // Slots come back when connections close.
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> client.connect(proxy.uri("/plain")).session.close());
    }
}
