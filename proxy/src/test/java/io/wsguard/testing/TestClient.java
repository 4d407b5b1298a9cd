package io.wsguard.testing;

import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.client.ClientUpgradeRequest;
import org.eclipse.jetty.websocket.client.WebSocketClient;

/** A real Jetty WebSocket client that records what it receives. */
public final class TestClient implements AutoCloseable {

    private final WebSocketClient client;

    public TestClient() throws Exception {
        final ClientConnector connector = new ClientConnector();
        connector.setSslContextFactory(new SslContextFactory.Client(true));
        final HttpClient http = new HttpClient(new org.eclipse.jetty.client.transport.HttpClientTransportOverHTTP(connector));
        client = new WebSocketClient(http);
        client.setMaxTextMessageSize(64L * 1024 * 1024);
        client.setMaxBinaryMessageSize(64L * 1024 * 1024);
        client.setIdleTimeout(Duration.ofMinutes(2));
        client.start();
    }

    /** Connects; {@code headers} and {@code subprotocols} may be empty. */
    public Recorder connect(URI uri, Map<String, String> headers, List<String> subprotocols) throws Exception {
        final Recorder recorder = new Recorder();
        final ClientUpgradeRequest request = new ClientUpgradeRequest(uri);
        headers.forEach(request::setHeader);
        if (!subprotocols.isEmpty()) {
            request.setSubProtocols(subprotocols);
        }
        request.setTimeout(10, TimeUnit.SECONDS);
        client.connect(recorder, request).get(15, TimeUnit.SECONDS);
        return recorder;
    }

    public Recorder connect(URI uri) throws Exception {
        return connect(uri, Map.of(), List.of());
    }

    /** Starts a connect and returns its future, for tests that expect a refusal. */
    public CompletableFuture<Session> connectAsync(URI uri, Map<String, String> headers) throws Exception {
        final ClientUpgradeRequest request = new ClientUpgradeRequest(uri);
        headers.forEach(request::setHeader);
        request.setTimeout(10, TimeUnit.SECONDS);
        return client.connect(new Recorder(), request);
    }

    @Override
    public void close() throws Exception {
        client.stop();
    }

    /** Records messages, pongs and the close; public because Jetty reaches endpoints through method handles. */
    public static final class Recorder implements Session.Listener.AutoDemanding {
        public final BlockingQueue<Object> messages = new LinkedBlockingQueue<>();
        public final BlockingQueue<byte[]> pongs = new LinkedBlockingQueue<>();
        public final CountDownLatch closed = new CountDownLatch(1);
        public volatile int closeCode;
        public volatile String closeReason;
        public volatile Session session;

        @Override
        public void onWebSocketOpen(Session session) {
            this.session = session;
        }

        @Override
        public void onWebSocketText(String message) {
            messages.add(message);
        }

        @Override
        public void onWebSocketBinary(ByteBuffer payload, Callback callback) {
            final byte[] copy = new byte[payload.remaining()];
            payload.get(copy);
            messages.add(copy);
            callback.succeed();
        }

        @Override
        public void onWebSocketPong(ByteBuffer payload) {
            final byte[] copy = new byte[payload.remaining()];
            payload.get(copy);
            pongs.add(copy);
        }

        @Override
        public void onWebSocketClose(int statusCode, String reason, Callback callback) {
            closeCode = statusCode;
            closeReason = reason;
            closed.countDown();
            callback.succeed();
        }

        public Object next() throws InterruptedException {
            return messages.poll(10, TimeUnit.SECONDS);
        }

        public boolean awaitClose() throws InterruptedException {
            return closed.await(10, TimeUnit.SECONDS);
        }

        public void send(String text) {
            session.sendText(text, Callback.NOOP);
        }
    }
}
