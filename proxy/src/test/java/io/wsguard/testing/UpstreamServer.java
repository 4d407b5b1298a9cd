package io.wsguard.testing;

import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.server.WebSocketUpgradeHandler;

/**
 * A real WebSocket server to proxy to: echoes text and binary, records every message and upgrade it
 * saw, and obeys a few commands sent as text ({@code close:CODE:REASON}, {@code die}, {@code push-…}, see
 * below) so that tests can make the upstream close, vanish or send control frames.
 * Binds 127.0.0.1 on an ephemeral port. Shared with the integration tests through the proxy's test-jar.
 */
public final class UpstreamServer implements AutoCloseable {

    private final Server server = new Server();
    private final ServerConnector connector;
    private final boolean secure;
    private final AtomicInteger upgrades = new AtomicInteger();
    private final AtomicInteger open = new AtomicInteger();
    private final AtomicLong bytesReceived = new AtomicLong();
    private final BlockingQueue<Object> messages = new LinkedBlockingQueue<>();
    private final List<Map<String, List<String>>> upgradeHeaders = new CopyOnWriteArrayList<>();
    private final List<String> upgradeUris = new CopyOnWriteArrayList<>();
    private final BlockingQueue<String> closes = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> pings = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> pongs = new LinkedBlockingQueue<>();
    private final Map<Session, Boolean> sessions = new ConcurrentHashMap<>();
    private volatile Endpoint newest;
    private volatile String subprotocol;
    private volatile boolean stalled;
    private volatile boolean record = true;

    public UpstreamServer() throws Exception {
        this(null);
    }

    /** Serves {@code wss://} with {@code tls}, or {@code ws://} when it is null. */
    public UpstreamServer(SslContextFactory.Server tls) throws Exception {
        secure = tls != null;
        connector = secure ? new ServerConnector(server, tls) : new ServerConnector(server);
        connector.setHost("127.0.0.1");
        server.addConnector(connector);
        server.setHandler(WebSocketUpgradeHandler.from(server, container -> {
            container.setMaxTextMessageSize(64L * 1024 * 1024);
            container.setMaxBinaryMessageSize(64L * 1024 * 1024);
            container.setIdleTimeout(Duration.ofMinutes(5));
            container.addMapping("/*", (request, response, callback) -> {
                upgrades.incrementAndGet();
                upgradeHeaders.add(request.getHeaders().stream()
                        .collect(java.util.stream.Collectors.groupingBy(
                                f -> f.getName().toLowerCase(java.util.Locale.ROOT),
                                java.util.stream.Collectors.mapping(
                                        f -> f.getValue(), java.util.stream.Collectors.toList()))));
                upgradeUris.add(request.getHttpURI().getPathQuery());
                final String wanted = subprotocol;
                if (wanted != null && request.getSubProtocols().contains(wanted)) {
                    response.setAcceptedSubProtocol(wanted);
                }
                final Endpoint endpoint = new Endpoint();
                newest = endpoint;
                return endpoint;
            });
        }));
        server.start();
    }

    /** {@code ws://127.0.0.1:PORT/PATH}. */
    public URI uri(String path) {
        return URI.create((secure ? "wss" : "ws") + "://127.0.0.1:" + connector.getLocalPort() + path);
    }

    public int port() {
        return connector.getLocalPort();
    }

    /** The subprotocol to accept when a client offers it. */
    public void acceptSubprotocol(String name) {
        this.subprotocol = name;
    }

    /** Stops reading: nothing is demanded any more, so the proxy's writes back up. */
    public void stall() {
        stalled = true;
    }

    /** Stops keeping messages, pings and pongs (floods would fill the heap); counting goes on. */
    public void dontRecord() {
        record = false;
    }

    public int upgrades() {
        return upgrades.get();
    }

    /** Connections open right now. */
    public int open() {
        return open.get();
    }

    /** Characters of text plus bytes of binary received, kept or not. */
    public long bytesReceived() {
        return bytesReceived.get();
    }

    public List<Map<String, List<String>>> upgradeHeaders() {
        return upgradeHeaders;
    }

    public List<String> upgradeUris() {
        return upgradeUris;
    }

    /** Every message received, in order: a String for text, a byte[] for binary. */
    public BlockingQueue<Object> messages() {
        return messages;
    }

    /** The payload, as UTF-8, of every PING received (each is answered with a PONG). */
    public BlockingQueue<String> pings() {
        return pings;
    }

    /** The payload, as UTF-8, of every PONG received. */
    public BlockingQueue<String> pongs() {
        return pongs;
    }

    /** "code reason" of every close the upstream saw. */
    public BlockingQueue<String> closes() {
        return closes;
    }

    /**
     * The upstream end of the connection whose upgrade arrived last. Right after a client's connect
     * through the proxy returns, that is the client's own: the proxy completes the upstream upgrade
     * before the client's, and the tests connect one at a time.
     */
    public Endpoint newest() {
        return newest;
    }

    /** Kills every open connection without a close handshake. */
    public void dropAll() {
        sessions.keySet().forEach(Session::disconnect);
    }

    @Override
    public void close() throws Exception {
        server.stop();
    }

    /** Echo endpoint; public because Jetty reaches endpoints through method handles. */
    public final class Endpoint implements Session.Listener {
        private final CountDownLatch ended = new CountDownLatch(1);
        private Session session;
        private volatile String closeStatus;

        /**
         * Waits (10 s at most) until this connection has closed or failed. It is the sentinel of a negative
         * assertion: frames are read one at a time and in order, the close last, so once this returns
         * everything the proxy sent on this connection has been recorded.
         */
        public boolean awaitEnd() throws InterruptedException {
            return ended.await(10, TimeUnit.SECONDS);
        }

        /** "code reason" of the close this connection saw, or null when it saw none (yet); see {@link #awaitEnd()}. */
        public String closeStatus() {
            return closeStatus;
        }

        @Override
        public void onWebSocketOpen(Session session) {
            this.session = session;
            sessions.put(session, Boolean.TRUE);
            open.incrementAndGet();
            session.demand();
        }

        @Override
        public void onWebSocketText(String message) {
            bytesReceived.addAndGet(message.length());
            if (record) {
                messages.add(message);
            }
            if (message.startsWith("close:")) {
                final String[] parts = message.split(":", 3);
                session.close(Integer.parseInt(parts[1]), parts.length > 2 ? parts[2] : null, Callback.NOOP);
                session.demand();
                return;
            }
            // "push-close:CODE:B64URL": close with a reason given as push-text's are.
            if (message.startsWith("push-close:")) {
                final String[] parts = message.split(":", 3);
                final byte[] reason = java.util.Base64.getUrlDecoder().decode(parts[2]);
                session.close(
                        Integer.parseInt(parts[1]),
                        new String(reason, java.nio.charset.StandardCharsets.UTF_8),
                        Callback.NOOP);
                session.demand();
                return;
            }
            // "push-ping:B64URL" / "push-pong:B64URL" (encoded as push-text's): the upstream sends a PING or an
            // unsolicited PONG.
            if (message.startsWith("push-ping:") || message.startsWith("push-pong:")) {
                final ByteBuffer payload = ByteBuffer.wrap(
                        java.util.Base64.getUrlDecoder().decode(message.substring("push-ping:".length())));
                if (message.startsWith("push-ping:")) {
                    session.sendPing(payload, Callback.from(this::next, x -> next()));
                } else {
                    session.sendPong(payload, Callback.from(this::next, x -> next()));
                }
                return;
            }
            if (message.equals("die")) {
                session.disconnect();
                return;
            }
            // "push-text:B64URL" / "push-binary:B64URL" (URL-safe, unpadded: plain text to any sanitizer): answer with
            // something the client never sent
            // (what direction: both checks on the way back).
            if (message.startsWith("push-text:")) {
                final byte[] decoded =
                        java.util.Base64.getUrlDecoder().decode(message.substring("push-text:".length()));
                session.sendText(
                        new String(decoded, java.nio.charset.StandardCharsets.UTF_8),
                        Callback.from(this::next, x -> next()));
                return;
            }
            if (message.startsWith("push-binary:")) {
                final byte[] decoded =
                        java.util.Base64.getUrlDecoder().decode(message.substring("push-binary:".length()));
                session.sendBinary(ByteBuffer.wrap(decoded), Callback.from(this::next, x -> next()));
                return;
            }
            session.sendText(message, Callback.from(this::next, x -> next()));
        }

        @Override
        public void onWebSocketBinary(ByteBuffer payload, Callback callback) {
            bytesReceived.addAndGet(payload.remaining());
            final byte[] copy = new byte[payload.remaining()];
            payload.get(copy);
            if (record) {
                messages.add(copy);
            }
            callback.succeed();
            session.sendBinary(ByteBuffer.wrap(copy), Callback.from(this::next, x -> next()));
        }

        private void next() {
            if (!stalled) {
                session.demand();
            }
        }

        @Override
        public void onWebSocketPing(ByteBuffer payload) {
            final byte[] copy = new byte[payload.remaining()];
            payload.get(copy);
            if (record) {
                pings.add(new String(copy, java.nio.charset.StandardCharsets.UTF_8));
            }
            session.sendPong(ByteBuffer.wrap(copy), Callback.NOOP);
            session.demand();
        }

        @Override
        public void onWebSocketPong(ByteBuffer payload) {
            final byte[] copy = new byte[payload.remaining()];
            payload.get(copy);
            if (record) {
                pongs.add(new String(copy, java.nio.charset.StandardCharsets.UTF_8));
            }
            session.demand();
        }

        @Override
        public void onWebSocketClose(int statusCode, String reason, Callback callback) {
            closeStatus = statusCode + " " + reason;
            closes.add(closeStatus);
            done();
            callback.succeed();
        }

        @Override
        public void onWebSocketError(Throwable cause) {
            done();
        }

        private void done() {
            if (sessions.remove(session) != null) {
                open.decrementAndGet();
            }
            ended.countDown();
        }
    }
}
