package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.wsguard.policy.TlsPolicy;
import io.wsguard.policy.UpstreamPolicy;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import io.wsguard.testing.UpstreamServer;
import io.wsguard.tls.ServerTls;
import io.wsguard.tls.UpstreamTls;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.io.AbstractEndPoint;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Invocable;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.Configuration;
import org.eclipse.jetty.websocket.core.CoreSession;
import org.eclipse.jetty.websocket.core.Frame;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.OpCode;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * wsguard's own upstream upgrade ({@link UpstreamHandshake}) against a real Jetty upstream over
 * {@code ws://} and {@code wss://}, and against a raw socket that answers what a broken or hostile
 * upstream would: every answer RFC 6455 §4.1 tells a client to fail must fail the attempt.
 */
@Timeout(60)
class UpstreamConnectorTest {

    @TempDir
    Path dir;

    private final QueuedThreadPool threads = new QueuedThreadPool();
    private final ScheduledExecutorScheduler scheduler = new ScheduledExecutorScheduler();
    private UpstreamServer upstream;
    private RawUpstream raw;
    private UpstreamConnector connector;

    @BeforeEach
    void startThreads() throws Exception {
        threads.start();
        scheduler.start();
    }

    @AfterEach
    void stop() throws Exception {
        if (connector != null) {
            connector.stop();
        }
        if (upstream != null) {
            upstream.close();
        }
        if (raw != null) {
            raw.close();
        }
        scheduler.stop();
        threads.stop();
    }

    @Test
    void plainUpstreamReadsRunOnTheSelectorOnceUpgraded() throws Exception {
        upstream = new UpstreamServer();

        assertEchoesAndReadsInline(null, Optional.empty());
    }

    @Test
    void tlsUpstreamReadsRunOnTheSelectorOnceUpgraded() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "upstream-ca");
        final TestCerts.Issued cert = ca.issue(dir, "upstream", List.of("127.0.0.1"), KeyType.EC, KeyFormat.PKCS8);
        upstream = new UpstreamServer(ServerTls.create(new TlsPolicy(
                List.of(new TlsPolicy.KeyPairPolicy(cert.certificate(), cert.privateKey())),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3", "TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty())));

        final Optional<UpstreamPolicy.UpstreamTlsPolicy> tls =
                Optional.of(new UpstreamPolicy.UpstreamTlsPolicy(Optional.of(ca.certificatePath()), true));
        assertEchoesAndReadsInline(UpstreamTls.create(tls), tls);
    }

    private void assertEchoesAndReadsInline(
            SslContextFactory.Client ssl, Optional<UpstreamPolicy.UpstreamTlsPolicy> tls) throws Exception {
        connector = connector(upstream.uri("/echo"), ssl, tls, Duration.ofSeconds(5));
        final Recorder recorder = new Recorder();

        final CoreSession session = connector
                .connect(request(HttpFields.EMPTY, List.of()), recorder)
                .get(10, TimeUnit.SECONDS)
                .session();
        session.sendFrame(new Frame(OpCode.TEXT, "ping me"), Callback.NOOP, false);

        assertThat(recorder.texts.poll(10, TimeUnit.SECONDS)).isEqualTo("ping me");
        final AbstractEndPoint network = (AbstractEndPoint)
                networkEndPoint(((WebSocketCoreSession) session).getConnection().getEndPoint());
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(network.getFillInterest().getCallbackInvocationType())
                        .isEqualTo(Invocable.InvocationType.NON_BLOCKING));
        session.close(CloseStatus.NORMAL, "done", Callback.NOOP);
    }

    @Test
    void answerWithAWrongAcceptKeyFailsTheAttempt() throws Exception {
        final RawUpstream raw = rawUpstream(accept -> answer101("Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA="));

        assertThatThrownBy(() -> connectTo(raw, request(HttpFields.EMPTY, List.of(), List.of())))
                .hasCauseInstanceOf(UpstreamUnavailableException.class)
                .hasMessageContaining("wrong Sec-WebSocket-Accept");
    }

    @Test
    void answerWithoutUpgradeHeaderFailsTheAttempt() throws Exception {
        final RawUpstream raw = rawUpstream(accept -> ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Accept: " + accept + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));

        assertThatThrownBy(() -> connectTo(raw, request(HttpFields.EMPTY, List.of(), List.of())))
                .hasCauseInstanceOf(UpstreamUnavailableException.class)
                .hasMessageContaining("without 'Upgrade: websocket'");
    }

    @Test
    void subprotocolThatWasNotOfferedFailsTheAttempt() throws Exception {
        final RawUpstream raw =
                rawUpstream(accept -> answer101("Sec-WebSocket-Accept: " + accept, "Sec-WebSocket-Protocol: evil"));

        assertThatThrownBy(() -> connectTo(raw, request(HttpFields.EMPTY, List.of("chat"), List.of())))
                .hasCauseInstanceOf(UpstreamUnavailableException.class)
                .hasMessageContaining("subprotocol that was not offered");
    }

    @Test
    void extensionThatWasNotOfferedFailsTheAttempt() throws Exception {
        final RawUpstream raw = rawUpstream(
                accept -> answer101("Sec-WebSocket-Accept: " + accept, "Sec-WebSocket-Extensions: permessage-deflate"));

        assertThatThrownBy(() -> connectTo(raw, request(HttpFields.EMPTY, List.of(), List.of())))
                .hasCauseInstanceOf(UpstreamUnavailableException.class)
                .hasMessageContaining("extension that was not offered");
    }

    @Test
    void refusalIsReportedWithItsStatus() throws Exception {
        final RawUpstream raw = rawUpstream(accept ->
                "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!".getBytes(StandardCharsets.US_ASCII));

        assertThatThrownBy(() -> connectTo(raw, request(HttpFields.EMPTY, List.of(), List.of())))
                .hasCauseInstanceOf(UpstreamRefusedException.class)
                .hasMessageContaining("status 403");
    }

    @Test
    void upstreamThatNeverAnswersTimesOut() throws Exception {
        final RawUpstream raw = rawUpstream(accept -> null);
        connector = connector(raw.uri("/silent"), null, Optional.empty(), Duration.ofMillis(500));

        final long started = System.nanoTime();
        assertThatThrownBy(() -> connector
                        .connect(request(HttpFields.EMPTY, List.of(), List.of()), new Recorder())
                        .get(10, TimeUnit.SECONDS))
                .hasCauseInstanceOf(UpstreamUnavailableException.class)
                .hasMessageContaining("no upgrade within 500 ms");
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(5));
    }

    @Test
    void framesSentRightBehindTheAnswerAreDelivered() throws Exception {
        final byte[] early = "early bird".getBytes(StandardCharsets.UTF_8);
        final RawUpstream raw = rawUpstream(accept -> {
            final byte[] head = answer101("Sec-WebSocket-Accept: " + accept);
            final byte[] both = Arrays.copyOf(head, head.length + 2 + early.length);
            both[head.length] = (byte) 0x81;
            both[head.length + 1] = (byte) early.length;
            System.arraycopy(early, 0, both, head.length + 2, early.length);
            return both;
        });
        final Recorder recorder = new Recorder();

        connectTo(raw, request(HttpFields.EMPTY, List.of(), List.of()), recorder);

        assertThat(recorder.texts.poll(10, TimeUnit.SECONDS)).isEqualTo("early bird");
    }

    @Test
    void requestNamesTheTargetAndCannotBeSplitByAHeaderValue() throws Exception {
        final RawUpstream raw = rawUpstream(accept -> answer101("Sec-WebSocket-Accept: " + accept));
        final HttpFields headers = HttpFields.build()
                .add("X-Claim", "alice\r\nX-Injected: yes")
                .add("Host", "evil.example")
                .add("Sec-WebSocket-Key", "forwarded-key-must-not-pass")
                .add("X-Forwarded-For", "192.0.2.7");

        connectTo(raw, request(headers, List.of("chat", "superchat"), List.of()));

        final List<String> lines =
                List.of(raw.requestHead.get(10, TimeUnit.SECONDS).split("\r\n"));
        assertThat(lines.get(0)).isEqualTo("GET /target?x=1 HTTP/1.1");
        assertThat(lines)
                .contains(
                        "Host: 127.0.0.1:" + raw.port(),
                        "Upgrade: websocket",
                        "Connection: Upgrade",
                        "Sec-WebSocket-Version: 13",
                        "Sec-WebSocket-Protocol: chat, superchat",
                        "X-Forwarded-For: 192.0.2.7");
        assertThat(lines).filteredOn(line -> line.startsWith("Host:")).hasSize(1);
        assertThat(lines)
                .filteredOn(line -> line.startsWith("Sec-WebSocket-Key:"))
                .hasSize(1)
                .noneMatch(line -> line.contains("forwarded-key"));
        assertThat(lines).noneMatch(line -> line.startsWith("X-Injected"));
        assertThat(lines).anyMatch(line -> line.startsWith("X-Claim: alice") && line.contains("X-Injected: yes"));
    }

    @Test
    void framesToTheUpstreamAreMaskedWithAFreshKeyEach() throws Exception {
        final RawUpstream raw = rawUpstream(accept -> answer101("Sec-WebSocket-Accept: " + accept));
        final CoreSession session = connectTo(raw, request(HttpFields.EMPTY, List.of(), List.of()), new Recorder());
        final int frames = 200;

        for (int i = 0; i < frames; i++) {
            session.sendFrame(new Frame(OpCode.TEXT, "message " + i), Callback.NOOP, false);
        }

        final Set<Integer> keys = new HashSet<>();
        for (int i = 0; i < frames; i++) {
            final RawUpstream.MaskedFrame frame = raw.readFrame();
            assertThat(frame.text()).isEqualTo("message " + i);
            keys.add(frame.maskKey());
        }
        // 200 keys drawn at random from 2^32 collide with a probability below 1e-5.
        assertThat(keys).hasSize(frames);
    }

    @Test
    void throughTheProxyAWrongAcceptKeyIs502AndAudited() throws Exception {
        final RawUpstream raw = rawUpstream(accept -> answer101("Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA="));
        try (RunningProxy proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: forged
                  match: { path: /forged }
                  upstream: { targets: [%s] }
                  auth: none
                """.formatted(raw.uri("/target"))));
                RawUpgrade client = RawUpgrade.send(proxy.port(), "/forged", Map.of())) {

            assertThat(client.status()).isEqualTo(502);
            assertThat(raw.requestHead.get(10, TimeUnit.SECONDS)).startsWith("GET /target HTTP/1.1");
            await().atMost(Duration.ofSeconds(5))
                    .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                            .containsEntry("reason", "upstream_unavailable")
                            .containsEntry("status", 502)
                            .containsEntry("route", "forged")));
        }
    }

    private CoreSession connectTo(RawUpstream raw, UpstreamConnector.Request request) throws Exception {
        return connectTo(raw, request, new Recorder());
    }

    private CoreSession connectTo(RawUpstream raw, UpstreamConnector.Request request, FrameHandler handler)
            throws Exception {
        connector = connector(raw.uri("/target?x=1"), null, Optional.empty(), Duration.ofSeconds(5));
        return connector.connect(request, handler).get(10, TimeUnit.SECONDS).session();
    }

    private UpstreamConnector connector(
            URI target, SslContextFactory.Client ssl, Optional<UpstreamPolicy.UpstreamTlsPolicy> tls, Duration timeout)
            throws Exception {
        final UpstreamConnector started = new UpstreamConnector(
                new UpstreamPolicy(
                        List.of(target),
                        UpstreamPolicy.Balance.ROUND_ROBIN,
                        timeout,
                        tls,
                        new UpstreamPolicy.HeadersPolicy(List.of(), Map.of(), List.of())),
                ssl,
                threads,
                scheduler);
        started.start();
        return started;
    }

    private static UpstreamConnector.Request request(HttpFields headers, List<String> subprotocols) {
        return request(headers, subprotocols, List.of());
    }

    private static UpstreamConnector.Request request(
            HttpFields headers, List<String> subprotocols, List<String> extensions) {
        return new UpstreamConnector.Request(
                "", null, headers, subprotocols, extensions, new Configuration.ConfigurationCustomizer(), null);
    }

    private RawUpstream rawUpstream(Function<String, byte[]> answer) throws IOException {
        raw = new RawUpstream(answer);
        return raw;
    }

    private static byte[] answer101(String... headers) {
        return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + String.join("\r\n", headers) + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII);
    }

    /**
     * One loopback connection that reads an upgrade request and answers what the test gives it
     * (from the accept key RFC 6455 would expect; null: never answer), then reads masked frames.
     */
    private static final class RawUpstream implements AutoCloseable {
        record MaskedFrame(int maskKey, String text) {}

        final CompletableFuture<String> requestHead = new CompletableFuture<>();
        private final ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
        private final CompletableFuture<Socket> accepted = new CompletableFuture<>();

        RawUpstream(Function<String, byte[]> answer) throws IOException {
            final Thread thread = new Thread(() -> serve(answer), "raw-upstream");
            thread.setDaemon(true);
            thread.start();
        }

        int port() {
            return server.getLocalPort();
        }

        URI uri(String pathAndQuery) {
            return URI.create("ws://127.0.0.1:" + port() + pathAndQuery);
        }

        private void serve(Function<String, byte[]> answer) {
            try {
                final Socket socket = server.accept();
                accepted.complete(socket);
                final InputStream in = socket.getInputStream();
                final ByteArrayOutputStream head = new ByteArrayOutputStream();
                while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
                    final int b = in.read();
                    if (b < 0) {
                        throw new EOFException("request head cut short");
                    }
                    head.write(b);
                }
                final String text = head.toString(StandardCharsets.ISO_8859_1);
                requestHead.complete(text);
                final Matcher key =
                        Pattern.compile("(?im)^Sec-WebSocket-Key: *(\\S+)").matcher(text);
                final byte[] reply = answer.apply(key.find() ? expectedAccept(key.group(1)) : "");
                if (reply != null) {
                    socket.getOutputStream().write(reply);
                    socket.getOutputStream().flush();
                }
            } catch (Exception e) {
                requestHead.completeExceptionally(e);
                accepted.completeExceptionally(e);
            }
        }

        /** RFC 6455 §4.2.2, computed here rather than by the code under test. */
        private static String expectedAccept(String key) throws Exception {
            final byte[] digest = MessageDigest.getInstance("SHA-1")
                    .digest((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").getBytes(StandardCharsets.US_ASCII));
            return Base64.getEncoder().encodeToString(digest);
        }

        /** A small masked text frame, as a client must send it. */
        MaskedFrame readFrame() throws Exception {
            final DataInputStream in =
                    new DataInputStream(accepted.get(10, TimeUnit.SECONDS).getInputStream());
            final int first = in.readUnsignedByte();
            final int second = in.readUnsignedByte();
            assertThat(first).as("FIN + TEXT").isEqualTo(0x81);
            assertThat(second & 0x80).as("mask bit").isEqualTo(0x80);
            final int length = second & 0x7F;
            assertThat(length).isLessThan(126);
            final int maskKey = in.readInt();
            final byte[] payload = in.readNBytes(length);
            for (int i = 0; i < payload.length; i++) {
                payload[i] ^= (byte) (maskKey >>> (8 * (3 - (i & 3))));
            }
            return new MaskedFrame(maskKey, new String(payload, StandardCharsets.UTF_8));
        }

        @Override
        public void close() throws IOException {
            server.close();
            if (accepted.isDone() && !accepted.isCompletedExceptionally()) {
                accepted.join().close();
            }
        }
    }

    /** The socket's endpoint, below TLS if there is TLS: the one the selector dispatches for. */
    private static EndPoint networkEndPoint(EndPoint endPoint) {
        EndPoint current = endPoint;
        while (current instanceof EndPoint.Wrapper wrapper) {
            current = wrapper.unwrap();
        }
        return current;
    }

    /** Records text frames and asks for the next one as soon as it has one. */
    private static final class Recorder implements FrameHandler {
        final BlockingQueue<String> texts = new LinkedBlockingQueue<>();
        private volatile CoreSession session;

        @Override
        public void onOpen(CoreSession coreSession, Callback callback) {
            session = coreSession;
            callback.succeeded();
            coreSession.demand();
        }

        @Override
        public void onFrame(Frame frame, Callback callback) {
            if (frame.getOpCode() == OpCode.TEXT) {
                texts.add(frame.getPayloadAsUTF8());
            }
            callback.succeeded();
            session.demand();
        }

        @Override
        public void onError(Throwable cause, Callback callback) {
            callback.succeeded();
        }

        @Override
        public void onClosed(CloseStatus closeStatus, Callback callback) {
            callback.succeeded();
        }
    }
}
