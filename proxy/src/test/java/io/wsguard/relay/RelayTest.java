package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.exceptions.UpgradeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The relay end to end, in-process: a real client, a real proxy and a real upstream on loopback. */
@Timeout(60)
class RelayTest {

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        upstream.acceptSubprotocol("chat.v2");
        proxy = RunningProxy.start(
                PolicyText.in(dir).routes("""
                - name: echo
                  match: { path: /echo }
                  upstream: { targets: [%s], headers: { forward: [User-Agent], set: { X-Route: echo }, remove: \
                [Cookie] } }
                  auth: none
                  messages: { maxSize: 20MiB }
                - name: small
                  match: { pathPrefix: /small/ }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { maxSize: 1KiB }
                """.formatted(upstream.uri("/echo"), upstream.uri("/up/"))));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void relaysTextAndBinaryByteExact() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("hello ✓");
        assertThat(ws.next()).isEqualTo("hello ✓");
        for (int size : new int[] {1, 125, 126, 65_535, 65_536, 1_000_000, 16 * 1024 * 1024}) {
            final byte[] payload = new byte[size];
            new Random(size).nextBytes(payload);
            ws.session.sendBinary(ByteBuffer.wrap(payload), Callback.NOOP);
            assertThat((byte[]) ws.next()).as("binary echo of %d bytes", size).isEqualTo(payload);
        }
        ws.session.close();
    }

    /**
     * Many messages read at once are relayed in batches (one write for the small ones read
     * together): every one arrives, whole and in order, at the upstream and back at the client,
     * small and large mixed so that batches are cut by frames too big to batch.
     */
    @Test
    void burstsOfMessagesReadTogetherArriveWholeAndInOrderBothWays() throws Exception {
        final Random random = new Random(7);
        final List<String> burst = new ArrayList<>();
        for (int i = 0; i < 2_000; i++) {
            final int size = random.nextInt(10) == 0 ? 4_000 + random.nextInt(20_000) : random.nextInt(200);
            burst.add("%05d:".formatted(i) + "x".repeat(size));
        }
        final double inBefore = relayed("messages", "inbound");
        final double outBefore = relayed("messages", "outbound");
        final double bytesBefore = relayed("bytes", "inbound");
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), "/echo", Map.of())) {
            assertThat(raw.status()).isEqualTo(101);
            final List<String> expected = new ArrayList<>();
            for (int round = 0; round < 3; round++) {
                final int from = round;
                final List<String> sent =
                        burst.stream().map(m -> "burst" + from + m).toList();
                raw.sendTextBurst(sent);
                expected.addAll(sent);
                assertThat(raw.readTexts(sent.size()))
                        .as("echoes of burst %d", round)
                        .containsExactlyElementsOf(sent);
            }
            final List<Object> seen = new ArrayList<>();
            while (seen.size() < expected.size()) {
                final Object next = upstream.messages().poll(10, TimeUnit.SECONDS);
                assertThat(next).as("upstream message %d", seen.size()).isNotNull();
                if (next instanceof String text && text.startsWith("burst")) {
                    seen.add(next);
                }
            }
            assertThat(seen).containsExactlyElementsOf(expected);
            // Counted once each way while the connection is open (the route's counters read it live).
            assertThat(relayed("messages", "inbound") - inBefore).isEqualTo(expected.size());
            assertThat(relayed("messages", "outbound") - outBefore).isEqualTo(expected.size());
            assertThat(relayed("bytes", "inbound") - bytesBefore)
                    .isEqualTo(expected.stream()
                            .mapToInt(m -> m.getBytes(StandardCharsets.UTF_8).length)
                            .sum());
        }
        // And still once after it closed.
        await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(proxy.server().metrics().scrape())
                        .containsPattern("wsguard_connections_active\\{route=\"echo\",upstream=\"[^\"]+\"} 0\\.0"));
        assertThat(relayed("messages", "inbound") - inBefore).isEqualTo(6_000);
    }

    /** {@code wsguard_NAME_total{direction=DIRECTION,route="echo",upstream=…}} from a scrape, over all upstreams. */
    private static double relayed(String name, String direction) {
        final String series = "wsguard_" + name + "_total{direction=\"" + direction + "\",route=\"echo\",";
        return proxy.server()
                .metrics()
                .scrape()
                .lines()
                .filter(l -> l.startsWith(series))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .sum();
    }

    @Test
    void relaysFragmentedMessagesAndPings() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.session.sendPartialText("frag", false, Callback.NOOP);
        ws.session.sendPartialText("men", false, Callback.NOOP);
        ws.session.sendPartialText("ted", true, Callback.NOOP);
        assertThat(ws.next()).isEqualTo("fragmented");
        ws.session.sendPing(ByteBuffer.wrap(new byte[] {1, 2, 3}), Callback.NOOP);
        assertThat(ws.pongs.poll(10, TimeUnit.SECONDS)).containsExactly(1, 2, 3);
        ws.session.close();
    }

    @Test
    void clientGetsTheSubprotocolTheUpstreamChose() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"), Map.of(), List.of("chat.v1", "chat.v2"));
        assertThat(ws.session.getUpgradeResponse().getAcceptedSubProtocol()).isEqualTo("chat.v2");
        ws.session.close();
    }

    @Test
    void forwardsQueryPathAndConfiguredHeaders() throws Exception {
        final int before = upstream.upgradeHeaders().size();
        final TestClient.Recorder ws = client.connect(
                proxy.uri("/small/room/7?x=1&y=2"),
                Map.of("Cookie", "secret=1", "X-Forwarded-For", "6.6.6.6"),
                List.of());
        ws.send("hi");
        assertThat(ws.next()).isEqualTo("hi");
        assertThat(upstream.upgradeUris().get(before)).isEqualTo("/up/room/7?x=1&y=2");
        final Map<String, List<String>> headers = upstream.upgradeHeaders().get(before);
        // The peer is not a trusted proxy: its X-Forwarded-For is replaced, never extended.
        assertThat(headers.get("x-forwarded-for")).containsExactly("127.0.0.1");
        assertThat(headers.get("x-forwarded-proto")).containsExactly("http");
        assertThat(headers).doesNotContainKey("cookie");
        ws.session.close();

        final TestClient.Recorder echo =
                client.connect(proxy.uri("/echo"), Map.of("User-Agent", "tester/1", "Cookie", "c=1"), List.of());
        final Map<String, List<String>> echoHeaders =
                upstream.upgradeHeaders().get(upstream.upgradeHeaders().size() - 1);
        assertThat(echoHeaders.get("user-agent")).containsExactly("tester/1");
        assertThat(echoHeaders.get("x-route")).containsExactly("echo");
        assertThat(echoHeaders).doesNotContainKey("cookie");
        echo.session.close();
    }

    @Test
    void upstreamCloseCodeAndReasonPassThrough() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("close:4321:bye now");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(4321);
        assertThat(ws.closeReason).isEqualTo("bye now");
    }

    @Test
    void clientCloseCodeReachesUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("x");
        assertThat(ws.next()).isEqualTo("x");
        upstream.closes().clear();
        ws.session.close(4100, "client done", Callback.NOOP);
        assertThat(upstream.closes().poll(10, TimeUnit.SECONDS)).isEqualTo("4100 client done");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(4100);
    }

    @Test
    void upstreamDeathClosesClientWith1014AndAudits() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("die");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1014);
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("reason", "upstream_unavailable")
                        .containsEntry("stage", "session")
                        .containsEntry("closeCode", 1014)));
    }

    @Test
    void tooBigMessageClosesWith1009UpstreamNeverSeesItAndAudits() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/small/x"));
        ws.send("ok");
        assertThat(ws.next()).isEqualTo("ok");
        upstream.messages().clear();
        ws.send("y".repeat(2000));
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1009);
        assertThat(upstream.messages()).noneMatch(m -> m instanceof String s && s.startsWith("yyy"));
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("reason", "message_too_big")
                        .containsEntry("route", "small")
                        .containsEntry("closeCode", 1009)));
    }

    @Test
    void unknownPathIs404AndAudited() throws Exception {
        final int before = upstream.upgrades();
        final ExecutionException failure = org.junit.jupiter.api.Assertions.assertThrows(
                ExecutionException.class,
                () -> client.connectAsync(proxy.uri("/nowhere"), Map.of()).get(10, TimeUnit.SECONDS));
        assertThat(failure.getCause()).isInstanceOf(UpgradeException.class);
        assertThat(((UpgradeException) failure.getCause()).getResponseStatusCode())
                .isEqualTo(404);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "no_route")
                .containsEntry("stage", "handshake")
                .containsEntry("status", 404));
    }
}
