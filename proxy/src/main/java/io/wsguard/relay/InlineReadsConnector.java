package io.wsguard.relay;

import java.nio.channels.SelectableChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.util.concurrent.Executor;
import javax.net.ssl.SSLEngine;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.ClientConnectionFactory;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.ManagedSelector;
import org.eclipse.jetty.io.SocketChannelEndPoint;
import org.eclipse.jetty.io.ssl.SslClientConnectionFactory;
import org.eclipse.jetty.io.ssl.SslConnection;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.FrameHandler;

/**
 * The upstream side's connector, whose endpoints can be told to run reads on the selector thread
 * once the connection on them only relays: the upstream half of what {@link InlineWebSocketConnection}
 * does for the client side.
 *
 * <p>Jetty's WebSocket client makes its connection itself, with no way to change how its reads
 * are dispatched, and hands every readable socket to a pool thread. The dispatch is decided by the
 * invocation type of the callback registered for fill interest on the endpoint the connection
 * reads from, and that endpoint is ours: a plain socket's, or the decrypted side of a TLS
 * connection (whose network reads follow the invocation type registered on it). After the upgrade
 * ({@link #readInline(EndPoint, FrameHandler)}), each registration is wrapped in a callback that declares itself
 * non-blocking. The HTTP exchange before it keeps Jetty's dispatch: response listeners may block.
 */
final class InlineReadsConnector extends ClientConnector {

    /**
     * Switches {@code endPoint}'s reads to the selector thread, if it is one of this connector's, and
     * tells {@code handler} before each wait for input if it wants to know ({@link InputDrained}).
     */
    static void readInline(EndPoint endPoint, FrameHandler handler) {
        if (endPoint instanceof InlineReads inline) {
            final InputDrained drained = handler instanceof InputDrained wants ? wants : null;
            inline.inlineFill().enable(drained);
            if (drained != null) {
                drained.drainSignalled();
            }
        }
    }

    @Override
    protected EndPoint newEndPoint(SelectableChannel channel, ManagedSelector selector, SelectionKey key) {
        if (channel instanceof SocketChannel socket) {
            return new InlineReadsEndPoint(socket, selector, key, getScheduler());
        }
        return super.newEndPoint(channel, selector, key);
    }

    @Override
    public ClientConnectionFactory newSslClientConnectionFactory(SslContextFactory.Client ssl, ClientConnectionFactory factory) {
        final SslContextFactory.Client context = ssl == null ? getSslContextFactory() : ssl;
        return new SslClientConnectionFactory(context, getByteBufferPool(), getExecutor(), factory) {
            @Override
            protected SslConnection newSslConnection(EndPoint endPoint, SSLEngine engine) {
                return new InlineReadsSslConnection(getByteBufferPool(), getExecutor(), getSslContextFactory(), endPoint, engine,
                        isDirectBuffersForEncryption(), isDirectBuffersForDecryption());
            }
        };
    }

    private interface InlineReads {
        InlineFill inlineFill();
    }

    /**
     * Wraps fill-interest callbacks, once enabled, in one that says it never blocks. Fill interest
     * is registered by one party at a time, so the cached wrapper needs no lock; the endpoint's fill
     * interest hands it over between threads.
     */
    private static final class InlineFill {
        private volatile boolean enabled;
        private InputDrained drained;
        private Callback wrapped;
        private Callback wrapper;

        void enable(InputDrained drained) {
            this.drained = drained;
            enabled = true;
        }

        /** Before the connection waits for input: its handler may have frames to write out. */
        Callback beforeWait(Callback callback) {
            if (enabled && drained != null) {
                drained.inputDrained();
            }
            return adapt(callback);
        }

        Callback adapt(Callback callback) {
            if (!enabled) {
                return callback;
            }
            if (callback != wrapped) {
                wrapper = new NonBlockingCallback(callback);
                wrapped = callback;
            }
            return wrapper;
        }
    }

    private static final class InlineReadsEndPoint extends SocketChannelEndPoint implements InlineReads {
        private final InlineFill inlineFill = new InlineFill();

        InlineReadsEndPoint(SocketChannel channel, ManagedSelector selector, SelectionKey key, Scheduler scheduler) {
            super(channel, selector, key, scheduler);
        }

        @Override
        public InlineFill inlineFill() {
            return inlineFill;
        }

        @Override
        public void fillInterested(Callback callback) {
            super.fillInterested(inlineFill.beforeWait(callback));
        }

        @Override
        public boolean tryFillInterested(Callback callback) {
            return super.tryFillInterested(inlineFill.adapt(callback));
        }
    }

    private static final class InlineReadsSslConnection extends SslConnection {

        InlineReadsSslConnection(ByteBufferPool pool, Executor executor, SslContextFactory ssl, EndPoint endPoint,
                                 SSLEngine engine, boolean directForEncryption, boolean directForDecryption) {
            super(pool, executor, ssl, endPoint, engine, directForEncryption, directForDecryption);
        }

        @Override
        protected SslEndPoint newSslEndPoint() {
            return new InlineReadsSslEndPoint();
        }

        private final class InlineReadsSslEndPoint extends SslEndPoint implements InlineReads {
            private final InlineFill inlineFill = new InlineFill();

            @Override
            public InlineFill inlineFill() {
                return inlineFill;
            }

            @Override
            public void fillInterested(Callback callback) {
                super.fillInterested(inlineFill.beforeWait(callback));
            }

            @Override
            public boolean tryFillInterested(Callback callback) {
                return super.tryFillInterested(inlineFill.adapt(callback));
            }
        }
    }
}
