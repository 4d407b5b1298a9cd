package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import io.wsguard.demo.DevCerts;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.SSLContext;
import org.eclipse.jetty.websocket.api.Callback;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Relaying through the built jar over wss:// with a real certificate: byte-exact echo up to 16 MiB,
 * fragments, pings, subprotocols, forwarded headers, close codes both ways, and every refusal row
 * (status or close code, the upstream saw nothing, the audit line).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RelayIT {

    private static final SecureRandom RANDOM = new SecureRandom();

    @TempDir
    static Path dir;

    static UpstreamServer echo;
    static UpstreamServer small;
    static UpstreamServer unused;
    static HttpServer refusing;
    static int closedPort;
    static SSLContext tls;
    static WsguardProcess proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        final DevCerts.DevCertPaths certs = Tls.certs(dir.resolve("certs"));
        tls = Tls.trusting(certs.caCertificate());
        echo = new UpstreamServer();
        echo.acceptSubprotocol("chat.v2");
        small = new UpstreamServer();
        unused = new UpstreamServer();
        refusing = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        refusing.createContext("/", exchange -> {
            exchange.sendResponseHeaders(403, -1);
            exchange.close();
        });
        refusing.start();
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }
        final String routes = """
                - name: echo
                  match: { path: /echo }
                  upstream:
                    targets: [%s]
                    headers:
                      forward: [X-Custom, X-Dropped]
                      set: { X-Served-By: wsguard }
                      remove: [X-Dropped]
                  auth: none
                  messages: { maxSize: 20MiB }
                - name: small
                  match: { path: /small }
                  upstream: { targets: [%s] }
                  auth: none
                  messages: { maxSize: 1KiB }
                - name: dead
                  match: { path: /dead }
                  upstream: { targets: ["ws://127.0.0.1:%d/dead"], connectTimeout: 2s }
                  auth: none
                - name: refused
                  match: { path: /refused }
                  upstream: { targets: ["ws://127.0.0.1:%d/refused"] }
                  auth: none
                """.formatted(
                        echo.uri("/echo"),
                        small.uri("/small"),
                        closedPort,
                        refusing.getAddress().getPort());
        proxy = WsguardProcess.start(
                PolicyText.in(dir).tls(certs.certificate(), certs.privateKey()).routes(routes));
        assertThat(proxy.listener(0).getScheme()).isEqualTo("wss");
        client = TestClient.builder()
                .trusting(tls)
                .nextTimeout(Duration.ofSeconds(20))
                .build();
    }

    @AfterAll
    static void stop() throws Exception {
        if (client != null) {
            client.close();
        }
        if (proxy != null) {
            proxy.close();
        }
        for (AutoCloseable c : new AutoCloseable[] {echo, small, unused}) {
            if (c != null) {
                c.close();
            }
        }
        if (refusing != null) {
            refusing.stop(0);
        }
    }

    private static void sendAndWait(Consumer<Callback> send) throws Exception {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        send.accept(Callback.from(() -> done.complete(null), done::completeExceptionally));
        done.get(60, TimeUnit.SECONDS);
    }

    private static String randomText(int length) {
        final char[] chars = new char[length];
        for (int i = 0; i < length; i++) {
            chars[i] = (char) ('!' + RANDOM.nextInt(94));
        }
        return new String(chars);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 64 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024})
    void echoesTextByteExact(int size) throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        final String text = randomText(size);
        sendAndWait(cb -> ws.session.sendText(text, cb));
        final Object back = ws.next();
        assertThat(back).isInstanceOf(String.class);
        assertThat(((String) back).length()).isEqualTo(size);
        assertThat(back.equals(text))
                .as("echo of %d chars equals what was sent", size)
                .isTrue();
        ws.session.close();
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 64 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024})
    void echoesBinaryByteExact(int size) throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        final byte[] bytes = new byte[size];
        RANDOM.nextBytes(bytes);
        sendAndWait(cb -> ws.session.sendBinary(ByteBuffer.wrap(bytes), cb));
        final Object back = ws.next();
        assertThat(back).isInstanceOf(byte[].class);
        assertThat(((byte[]) back).length).isEqualTo(size);
        assertThat(Arrays.equals((byte[]) back, bytes))
                .as("echo of %d bytes equals what was sent", size)
                .isTrue();
        ws.session.close();
    }

    @Test
    void relaysFragmentedTextAsOneMessage() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        sendAndWait(cb -> ws.session.sendPartialText("fragmented-", false, cb));
        sendAndWait(cb -> ws.session.sendPartialText("héllo-", false, cb));
        sendAndWait(cb -> ws.session.sendPartialText("end", true, cb));
        assertThat(ws.next()).isEqualTo("fragmented-héllo-end");
        ws.session.close();
    }

    @Test
    void pingGetsPongWithSamePayload() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        sendAndWait(cb -> ws.session.sendPing(ByteBuffer.wrap("ping-42".getBytes(StandardCharsets.UTF_8)), cb));
        final byte[] pong = ws.pongs.poll(10, TimeUnit.SECONDS);
        assertThat(pong).isNotNull();
        assertThat(new String(pong, StandardCharsets.UTF_8)).isEqualTo("ping-42");
        ws.session.close();
    }

    @Test
    void clientGetsTheSubprotocolTheUpstreamChose() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"), Map.of(), List.of("chat.v1", "chat.v2"));
        assertThat(ws.session.getUpgradeResponse().getAcceptedSubProtocol()).isEqualTo("chat.v2");
        ws.session.close();
    }

    @Test
    void forwardsHeadersAndQueryString() throws Exception {
        final int before = echo.upgrades();
        final TestClient.Recorder ws = client.connect(
                proxy.uri("/echo?room=7&who=x%20y"),
                Map.of(
                        "X-Custom",
                        "kept",
                        "X-Dropped",
                        "secret",
                        "X-Other",
                        "not-forwarded",
                        "X-Forwarded-For",
                        "203.0.113.9"),
                List.of());
        ws.send("marker");
        assertThat(ws.next()).isEqualTo("marker");
        final Map<String, List<String>> headers = echo.upgradeHeaders().get(before);
        assertThat(echo.upgradeUris().get(before)).isEqualTo("/echo?room=7&who=x%20y");
        assertThat(headers.get("x-custom")).containsExactly("kept");
        assertThat(headers).doesNotContainKey("x-dropped").doesNotContainKey("x-other");
        assertThat(headers.get("x-served-by")).containsExactly("wsguard");
        // 127.0.0.1 is not a trusted proxy here, so a client's own X-Forwarded-For is not believed.
        assertThat(headers.get("x-forwarded-for")).containsExactly("127.0.0.1");
        assertThat(headers.get("x-forwarded-proto")).containsExactly("https");
        assertThat(headers.get("x-forwarded-host")).containsExactly("127.0.0.1:" + proxy.port());
        ws.session.close();
    }

    @Test
    void upstreamCloseCodeAndReasonReachTheClient() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("close:4001:upstream says bye");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(4001);
        assertThat(ws.closeReason).isEqualTo("upstream says bye");
    }

    @Test
    void clientCloseCodeAndReasonReachTheUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("hello");
        assertThat(ws.next()).isEqualTo("hello");
        echo.closes().clear();
        ws.session.close(4002, "client says bye", Callback.NOOP);
        assertThat(echo.closes().poll(10, TimeUnit.SECONDS)).isEqualTo("4002 client says bye");
        assertThat(ws.awaitClose()).isTrue();
    }

    @Test
    void upstreamDeathClosesClientWith1014AndAudits() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("die");
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1014);
        final Map<String, Object> line = proxy.awaitAudit(
                l -> "upstream_unavailable".equals(l.get("reason")) && "echo".equals(l.get("route")),
                "upstream_unavailable on route echo");
        assertThat(line.get("closeCode")).isEqualTo(1014);
    }

    @Test
    void unreachableUpstreamGives502AndAudits() throws Exception {
        try (RawWebSocket ws = RawWebSocket.connect(proxy.uri("/dead"), tls)) {
            assertThat(ws.status()).isEqualTo(502);
        }
        final Map<String, Object> line = proxy.awaitAudit(
                l -> "upstream_unavailable".equals(l.get("reason")) && "dead".equals(l.get("route")),
                "upstream_unavailable on route dead");
        assertThat(line.get("status")).isEqualTo(502);
    }

    @Test
    void upstreamRefusingTheUpgradeGives502AndAudits() throws Exception {
        try (RawWebSocket ws = RawWebSocket.connect(proxy.uri("/refused"), tls)) {
            assertThat(ws.status()).isEqualTo(502);
        }
        final Map<String, Object> line = proxy.awaitAudit("upstream_refused");
        assertThat(line.get("route")).isEqualTo("refused");
        assertThat(line.get("status")).isEqualTo(502);
    }

    @Test
    void noRouteGives404AndAudits() throws Exception {
        try (RawWebSocket ws = RawWebSocket.connect(proxy.uri("/nowhere"), tls)) {
            assertThat(ws.status()).isEqualTo(404);
        }
        assertThat(proxy.awaitAudit("no_route").get("status")).isEqualTo(404);
        assertThat(unused.upgrades()).isZero();
    }

    @Test
    void plainGetGives426WithUpgradeHeaderAndAudits() throws Exception {
        final int before = echo.upgrades();
        final HttpClient http = HttpClient.newBuilder()
                .sslContext(tls)
                .version(HttpClient.Version.HTTP_1_1)
                .build();
        final URI https = URI.create("https://127.0.0.1:" + proxy.port() + "/echo");
        final HttpResponse<String> response =
                http.send(HttpRequest.newBuilder(https).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(426);
        assertThat(response.headers().firstValue("Upgrade"))
                .hasValueSatisfying(v -> assertThat(v).isEqualToIgnoringCase("websocket"));
        assertThat(proxy.awaitAudit("not_websocket").get("status")).isEqualTo(426);
        assertThat(echo.upgrades()).isEqualTo(before);
    }

    @Test
    void oversizeMessageCloses1009AndNeverReachesUpstream() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/small"));
        ws.send("fits");
        assertThat(ws.next()).isEqualTo("fits");
        final String big = "B".repeat(2048);
        ws.send(big);
        assertThat(ws.awaitClose()).isTrue();
        assertThat(ws.closeCode).isEqualTo(1009);
        final Map<String, Object> line = proxy.awaitAudit("message_too_big");
        assertThat(line.get("route")).isEqualTo("small");
        assertThat(line.get("closeCode")).isEqualTo(1009);
        assertThat(small.messages()).containsExactly("fits");
    }
}
