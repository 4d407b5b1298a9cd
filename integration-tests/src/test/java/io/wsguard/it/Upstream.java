package io.wsguard.it;

import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.server.WebSocketUpgradeHandler;

/**
 * A real WebSocket upstream in the test JVM: echoes text, binary and pings, records every upgrade
 * and message, and obeys text commands {@code close:CODE:REASON} and {@code die} (disconnect without
 * a close handshake). {@link #stall()} stops demanding after the first message, so the proxy's
 * writes back up. Binds 127.0.0.1 on an ephemeral port.
 */
final class Upstream implements AutoCloseable {

    private final Server server = new Server();
    private final ServerConnector connector = new ServerConnector(server);
    private final AtomicInteger upgrades = new AtomicInteger();
    private final AtomicInteger open = new AtomicInteger();
    private final AtomicLong bytesReceived = new AtomicLong();
    private final BlockingQueue<Object> messages = new LinkedBlockingQueue<>();
    private final List<Map<String, List<String>>> upgradeHeaders = new CopyOnWriteArrayList<>();
    private final List<String> upgradeUris = new CopyOnWriteArrayList<>();
    private final BlockingQueue<String> closes = new LinkedBlockingQueue<>();
    private final Map<Session, Boolean> sessions = new ConcurrentHashMap<>();
    private volatile String subprotocol;
    private volatile boolean stalled;
    private volatile boolean record = true;

    Upstream() throws Exception {
        connector.setHost("127.0.0.1");
        server.addConnector(connector);
        server.setHandler(WebSocketUpgradeHandler.from(server, container -> {
            container.setMaxTextMessageSize(64L * 1024 * 1024);
            container.setMaxBinaryMessageSize(64L * 1024 * 1024);
            container.setIdleTimeout(Duration.ofMinutes(5));
            container.addMapping("/*", (request, response, callback) -> {
                upgrades.incrementAndGet();
                upgradeHeaders.add(request.getHeaders().stream().collect(Collectors.groupingBy(
                        f -> f.getName().toLowerCase(Locale.ROOT),
                        Collectors.mapping(f -> f.getValue(), Collectors.toList()))));
                upgradeUris.add(request.getHttpURI().getPathQuery());
                final String wanted = subprotocol;
                if (wanted != null && request.getSubProtocols().contains(wanted)) {
                    response.setAcceptedSubProtocol(wanted);
                }
                return new Endpoint();
            });
        }));
        server.start();
    }

    /** {@code ws://127.0.0.1:PORT/PATH}. */
    URI uri(String path) {
        return URI.create("ws://127.0.0.1:" + connector.getLocalPort() + path);
    }

    /** The subprotocol to accept when a client offers it. */
    void acceptSubprotocol(String name) {
        this.subprotocol = name;
    }

    /** Stops demanding after each connection's first message. */
    void stall() {
        stalled = true;
    }

    /** Stops keeping messages (floods would fill the heap); counting goes on. */
    void dontRecord() {
        record = false;
    }

    int upgrades() {
        return upgrades.get();
    }

    /** Connections open right now. */
    int open() {
        return open.get();
    }

    long bytesReceived() {
        return bytesReceived.get();
    }

    List<Map<String, List<String>>> upgradeHeaders() {
        return upgradeHeaders;
    }

    List<String> upgradeUris() {
        return upgradeUris;
    }

    /** Every message received, in order: a String for text, a byte[] for binary. */
    BlockingQueue<Object> messages() {
        return messages;
    }

    /** "CODE REASON" of every close the upstream saw. */
    BlockingQueue<String> closes() {
        return closes;
    }

    @Override
    public void close() throws Exception {
        server.stop();
    }

    /** Echo endpoint; public because Jetty reaches endpoints through method handles. */
    public final class Endpoint implements Session.Listener {
        private Session session;

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
            if (message.equals("die")) {
                session.disconnect();
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
            session.sendPong(ByteBuffer.wrap(copy), Callback.NOOP);
            session.demand();
        }

        @Override
        public void onWebSocketClose(int statusCode, String reason, Callback callback) {
            done();
            closes.add(statusCode + " " + reason);
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
        }
    }
}
