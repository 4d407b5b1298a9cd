package io.wsguard.server;

import io.wsguard.relay.InlineHandshaker;
import io.wsguard.relay.SelectorAffinity;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.eclipse.jetty.io.ClientConnectionFactory;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.ManagedSelector;
import org.eclipse.jetty.io.SelectorManager;
import org.eclipse.jetty.io.SocketChannelEndPoint;
import org.eclipse.jetty.io.ssl.SslConnection;
import org.eclipse.jetty.server.ConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Promise;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * A {@link ServerConnector} whose sockets close through {@link Linger} (a CLOSE frame is never lost
 * to a reset), and whose selector threads also watch the upstream sockets of the connections they
 * accepted ({@link SelectorAffinity}).
 *
 * <p>Every accepted socket must have become a WebSocket connection within the connector's idle
 * timeout ({@code proxy.handshakeTimeout}), counted from the accept; otherwise it is closed. The
 * idle timeout alone never ends a client that sends one byte of its TLS handshake or its request
 * headers just before each timeout: thousands of those hold descriptors and memory for good.
 */
final class LingeringConnector extends ServerConnector {

    /**
     * One selector thread per core, as NGINX runs one worker per core: relaying runs on the selector
     * threads, so they bound how many cores relay (Jetty's default is half the cores, at most 4).
     * Capped so that a few listeners on a large machine leave most of the 256-thread pool free.
     */
    static final int SELECTORS = Math.max(1, Math.min(32, Runtime.getRuntime().availableProcessors()));

    private final Linger linger;
    /** Told each time a socket is closed for not completing its handshake in time. */
    private final Runnable handshakeCut;

    LingeringConnector(Server server, Linger linger, Runnable handshakeCut, ConnectionFactory... factories) {
        super(server, -1, SELECTORS, factories);
        this.linger = linger;
        this.handshakeCut = handshakeCut;
    }

    @Override
    protected SocketChannelEndPoint newEndPoint(SocketChannel channel, ManagedSelector selector, SelectionKey key)
            throws IOException {
        final LingeringEndPoint endPoint = new LingeringEndPoint(
                channel, selector, key, getScheduler(), linger, (RelaySelectorManager) getSelectorManager());
        final long handshakeTimeout = getIdleTimeout();
        endPoint.setIdleTimeout(handshakeTimeout);
        if (handshakeTimeout > 0) {
            getScheduler()
                    .schedule(
                            () -> cutUnlessUpgraded(endPoint, handshakeTimeout),
                            handshakeTimeout,
                            TimeUnit.MILLISECONDS);
        }
        return endPoint;
    }

    /** Closes {@code endPoint} unless it carries a WebSocket connection by now (under TLS too). */
    private void cutUnlessUpgraded(EndPoint endPoint, long handshakeTimeout) {
        if (!endPoint.isOpen()) {
            return;
        }
        Connection connection = endPoint.getConnection();
        while (connection instanceof SslConnection tls) {
            connection = tls.getSslEndPoint().getConnection();
        }
        if (InlineHandshaker.carriesWebSocket(connection)) {
            return;
        }
        handshakeCut.run();
        endPoint.close(new TimeoutException("handshake not complete " + handshakeTimeout + " ms after accept"));
    }

    @Override
    protected SelectorManager newSelectorManager(Executor executor, Scheduler scheduler, int selectors) {
        return new RelaySelectorManager(executor, scheduler, selectors);
    }

    /** The context of an upstream socket registered here, or null for an accepted client socket. */
    // Jetty's ClientConnector attaches a Map<String, Object> context; the CONTEXT_KEY entry says it is one.
    @SuppressWarnings("unchecked")
    private static Map<String, Object> upstream(Object attachment) {
        return attachment instanceof Map<?, ?> context && context.containsKey(ClientConnectionFactory.CONTEXT_KEY)
                ? (Map<String, Object>) context
                : null;
    }

    // Jetty's ClientConnector stores a Promise<Connection> under this key; the context map holds Objects.
    @SuppressWarnings("unchecked")
    private static Promise<Connection> promise(Map<String, Object> context) {
        return (Promise<Connection>) context.get(ClientConnector.CONNECTION_PROMISE_CONTEXT_KEY);
    }

    /**
     * The listener's selectors, which also take upstream sockets pinned to one of them: made and
     * reported as a {@link ClientConnector}'s selector would, from the context they came with.
     */
    private final class RelaySelectorManager extends ServerConnectorManager {
        /**
         * Set only while {@link #register} hands a socket to the selector of its choice, and read on the
         * same thread within that call: one for all listeners is enough.
         */
        private static final ThreadLocal<ManagedSelector> PINNED = new ThreadLocal<>();

        RelaySelectorManager(Executor executor, Scheduler scheduler, int selectors) {
            super(executor, scheduler, selectors);
        }

        void register(ManagedSelector selector, SocketChannel channel, boolean connected, Map<String, Object> context) {
            PINNED.set(selector);
            try {
                if (connected) {
                    accept(channel, context);
                } else {
                    connect(channel, context);
                }
            } finally {
                PINNED.remove();
            }
        }

        @Override
        protected ManagedSelector chooseSelector() {
            final ManagedSelector selector = PINNED.get();
            return selector != null ? selector : super.chooseSelector();
        }

        @Override
        protected SocketChannelEndPoint newEndPoint(
                SelectableChannel channel, ManagedSelector selector, SelectionKey key) throws IOException {
            if (upstream(key.attachment()) != null) {
                final SocketChannelEndPoint endPoint =
                        new RelayEndPoint((SocketChannel) channel, selector, key, getScheduler());
                // Until the WebSocket session sets its own: the upgrade is bounded by the attempt's timeout too.
                endPoint.setIdleTimeout(getIdleTimeout());
                return endPoint;
            }
            return super.newEndPoint(channel, selector, key);
        }

        @Override
        public Connection newConnection(SelectableChannel channel, EndPoint endPoint, Object attachment)
                throws IOException {
            final Map<String, Object> context = upstream(attachment);
            if (context != null) {
                return ((ClientConnectionFactory) context.get(ClientConnectionFactory.CONTEXT_KEY))
                        .newConnection(endPoint, context);
            }
            return super.newConnection(channel, endPoint, attachment);
        }

        @Override
        public void connectionOpened(Connection connection, Object attachment) {
            super.connectionOpened(connection, attachment);
            final Map<String, Object> context = upstream(attachment);
            if (context != null) {
                promise(context).succeeded(connection);
            }
        }

        @Override
        protected void connectionFailed(SelectableChannel channel, Throwable failure, Object attachment) {
            final Map<String, Object> context = upstream(attachment);
            if (context != null) {
                promise(context).failed(failure);
                return;
            }
            super.connectionFailed(channel, failure, attachment);
        }

        @Override
        protected void onAcceptFailed(SelectableChannel channel, Throwable failure, Object attachment) {
            super.onAcceptFailed(channel, failure, attachment);
            final Map<String, Object> context = upstream(attachment);
            if (context != null) {
                promise(context).failed(failure);
            }
        }
    }

    /**
     * A socket endpoint that skips the read that would find nothing, on connections where it keeps
     * finding nothing.
     *
     * <p>A connection reads until a fill returns 0 and only then waits for the selector. Relaying one
     * small message at a time, that last read was a second {@code read} syscall per message, failing
     * with {@code EAGAIN}: under 100 connections of 64-byte echoes, 2.0 reads per relayed message
     * where NGINX makes 1 {@code recvfrom} (strace -c). After a short read (less than the buffer had
     * room for) the socket is most likely drained, and this endpoint answers the next fill with 0
     * itself. Where the peer keeps sending (one connection with many messages in flight), the read
     * after a short one usually finds more, and going back to the selector instead costs more than
     * that read: so the endpoint reads once after a short read to see ({@link #probe}), skips only
     * while such reads come back empty, and looks again every {@link #PROBE_EVERY} skips.
     *
     * <p>Skipping a read is always safe: the selector reports readiness level-triggered, so bytes
     * that arrived after the short read wake the connection at once.
     */
    static class RelayEndPoint extends SocketChannelEndPoint {
        private static final int PROBE_EVERY = 32;

        /** The last read was short and the next fill answers 0 without a syscall. */
        private boolean skipNext;
        /** The last read was short and the next fill reads to learn whether skipping pays. */
        private boolean probe;
        /** Reads after a short one came back empty: skip them. */
        private boolean skipping;

        private int skips;

        RelayEndPoint(SocketChannel channel, ManagedSelector selector, SelectionKey key, Scheduler scheduler) {
            super(channel, selector, key, scheduler);
        }

        @Override
        public int fill(ByteBuffer buffer) throws IOException {
            if (skipNext) {
                skipNext = false;
                return 0;
            }
            // The room the read will have: Jetty's fill clears an empty buffer and compacts a full one.
            final int room = !buffer.hasRemaining()
                    ? buffer.capacity()
                    : buffer.limit() == buffer.capacity() ? buffer.position() : buffer.capacity() - buffer.limit();
            final int filled = super.fill(buffer);
            if (probe) {
                probe = false;
                skipping = filled == 0;
            }
            if (filled > 0 && filled < room) {
                if (skipping && ++skips % PROBE_EVERY != 0) {
                    skipNext = true;
                } else {
                    probe = true;
                }
            }
            return filled;
        }

        @Override
        public Runnable onSelected() {
            // The selector says there is more: read it, whatever the last read was.
            skipNext = false;
            probe = false;
            return super.onSelected();
        }
    }

    private static final class LingeringEndPoint extends RelayEndPoint implements SelectorAffinity {
        private final SelectionKey key;
        private final Linger linger;
        private final ManagedSelector selector;
        private final RelaySelectorManager selectors;
        private volatile boolean handedOver;

        LingeringEndPoint(
                SocketChannel channel,
                ManagedSelector selector,
                SelectionKey key,
                Scheduler scheduler,
                Linger linger,
                RelaySelectorManager selectors) {
            super(channel, selector, key, scheduler);
            this.key = key;
            this.linger = linger;
            this.selector = selector;
            this.selectors = selectors;
        }

        @Override
        public void register(SocketChannel channel, boolean connected, Map<String, Object> context) {
            selectors.register(selector, channel, connected, context);
        }

        @Override
        public boolean isOpen() {
            // Closed as far as Jetty is concerned once the linger thread owns the socket.
            return !handedOver && super.isOpen();
        }

        @Override
        public void doClose() {
            handedOver = true;
            // Jetty's selector must stop watching the socket before the linger thread owns it.
            key.cancel();
            linger.close(getChannel());
        }
    }
}
