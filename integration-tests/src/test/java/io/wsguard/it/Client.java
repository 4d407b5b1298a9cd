package io.wsguard.it;

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
import javax.net.ssl.SSLContext;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.transport.HttpClientTransportOverHTTP;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.client.ClientUpgradeRequest;
import org.eclipse.jetty.websocket.client.WebSocketClient;

/** A real Jetty WebSocket client that records what it receives; for wss it trusts the given context. */
final class Client implements AutoCloseable {

    private final WebSocketClient client;

    Client(SSLContext tls) throws Exception {
        final ClientConnector connector = new ClientConnector();
        final SslContextFactory.Client ssl = new SslContextFactory.Client();
        if (tls != null) {
            ssl.setSslContext(tls);
        }
        connector.setSslContextFactory(ssl);
        client = new WebSocketClient(new HttpClient(new HttpClientTransportOverHTTP(connector)));
        client.setMaxTextMessageSize(64L * 1024 * 1024);
        client.setMaxBinaryMessageSize(64L * 1024 * 1024);
        client.setIdleTimeout(Duration.ofMinutes(2));
        client.start();
    }

    /** Connects; {@code headers} and {@code subprotocols} may be empty. */
    Recorder connect(URI uri, Map<String, String> headers, List<String> subprotocols) throws Exception {
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

    Recorder connect(URI uri) throws Exception {
        return connect(uri, Map.of(), List.of());
    }

    /** Starts a connect and returns its future, for tests that expect a refusal. */
    CompletableFuture<Session> connectAsync(URI uri) throws Exception {
        final ClientUpgradeRequest request = new ClientUpgradeRequest(uri);
        request.setTimeout(10, TimeUnit.SECONDS);
        return client.connect(new Recorder(), request);
    }

    @Override
    public void close() throws Exception {
        client.stop();
    }

    /** Records messages, pongs and the close; public because Jetty reaches endpoints through method handles. */
    public static final class Recorder implements Session.Listener.AutoDemanding {
        final BlockingQueue<Object> messages = new LinkedBlockingQueue<>();
        final BlockingQueue<byte[]> pongs = new LinkedBlockingQueue<>();
        final CountDownLatch closed = new CountDownLatch(1);
        volatile int closeCode;
        volatile String closeReason;
        volatile Session session;

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

        Object next() throws InterruptedException {
            return messages.poll(20, TimeUnit.SECONDS);
        }

        boolean awaitClose() throws InterruptedException {
            return closed.await(10, TimeUnit.SECONDS);
        }

        void send(String text) {
            session.sendText(text, Callback.NOOP);
        }
    }
}
