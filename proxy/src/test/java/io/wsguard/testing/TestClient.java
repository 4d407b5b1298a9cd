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
import javax.net.ssl.SSLContext;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.transport.HttpClientTransportOverHTTP;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.client.ClientUpgradeRequest;
import org.eclipse.jetty.websocket.client.WebSocketClient;

/**
 * A real Jetty WebSocket client that records what it receives. Shared with the integration tests
 * through the proxy's test-jar; {@link #builder()} sets what they need differently.
 */
public final class TestClient implements AutoCloseable {

    private final WebSocketClient client;
    private final Duration nextTimeout;

    /** Trusts every certificate; {@link Recorder#next()} waits 10 s. */
    public TestClient() throws Exception {
        this(builder());
    }

    private TestClient(Builder builder) throws Exception {
        final ClientConnector connector = new ClientConnector();
        final SslContextFactory.Client ssl;
        if (builder.trusted == null) {
            ssl = new SslContextFactory.Client(true);
        } else {
            ssl = new SslContextFactory.Client();
            ssl.setSslContext(builder.trusted);
        }
        connector.setSslContextFactory(ssl);
        nextTimeout = builder.nextTimeout;
        final HttpClient http = new HttpClient(new HttpClientTransportOverHTTP(connector));
        client = new WebSocketClient(http);
        client.setMaxTextMessageSize(64L * 1024 * 1024);
        client.setMaxBinaryMessageSize(64L * 1024 * 1024);
        client.setIdleTimeout(Duration.ofMinutes(2));
        client.start();
    }

    /** Connects; {@code headers} and {@code subprotocols} may be empty. */
    public Recorder connect(URI uri, Map<String, String> headers, List<String> subprotocols) throws Exception {
        final Recorder recorder = new Recorder(nextTimeout);
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
        return client.connect(new Recorder(nextTimeout), request);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** What differs between the in-process tests and the integration tests, which drive a separate process over TLS. */
    public static final class Builder {
        private SSLContext trusted;
        private Duration nextTimeout = Duration.ofSeconds(10);

        private Builder() {}

        /** Trusts only what {@code context} trusts, instead of every certificate. */
        public Builder trusting(SSLContext context) {
            this.trusted = context;
            return this;
        }

        /** How long {@link Recorder#next()} waits for a message. */
        public Builder nextTimeout(Duration timeout) {
            this.nextTimeout = timeout;
            return this;
        }

        public TestClient build() throws Exception {
            return new TestClient(this);
        }
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
        private final Duration nextTimeout;

        Recorder(Duration nextTimeout) {
            this.nextTimeout = nextTimeout;
        }

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
            return messages.poll(nextTimeout.toMillis(), TimeUnit.MILLISECONDS);
        }

        public boolean awaitClose() throws InterruptedException {
            return closed.await(10, TimeUnit.SECONDS);
        }

        public void send(String text) {
            session.sendText(text, Callback.NOOP);
        }
    }
}
