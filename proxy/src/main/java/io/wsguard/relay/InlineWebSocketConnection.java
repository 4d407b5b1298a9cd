package io.wsguard.relay;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.Executor;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.WebSocketConnection;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;

/**
 * A relaying WebSocket connection, on either side, whose reads run on the selector thread that saw
 * the socket become readable, instead of being handed to a pool thread.
 *
 * <p>Jetty dispatches a read to its pool unless the fill callback says it never blocks. Relaying
 * never blocks: a frame is passed to the other side's non-blocking send, and the next read is
 * demanded only when that send completes. The hand-off per readable socket (an unpark and two
 * context switches) was the largest single cost in the relay's profile.
 */
final class InlineWebSocketConnection extends WebSocketConnection {

    private final Callback inlineFillable =
            new NonBlockingCallback(Callback.from(this::onFillable, this::onFillInterestedFailed));

    /** Told before each wait for input, so that frames it batched for its peer go out. */
    private final InputDrained drained;

    private final ByteBufferPool pool;

    /**
     * Bytes the peer sent right behind its upgrade (frames that came in the same read), kept here
     * until the session knows which path relays the connection: Jetty's parser or the
     * {@link FramePump}, which takes them over with the endpoint.
     */
    private ByteBuffer prefill;

    InlineWebSocketConnection(
            EndPoint endPoint,
            Executor executor,
            Scheduler scheduler,
            ByteBufferPool pool,
            WebSocketCoreSession session) {
        this(endPoint, executor, scheduler, pool, session, null);
    }

    /** {@code masks}: the masking keys of a client-side (upstream) connection; null on the server side. */
    InlineWebSocketConnection(
            EndPoint endPoint,
            Executor executor,
            Scheduler scheduler,
            ByteBufferPool pool,
            WebSocketCoreSession session,
            Random masks) {
        super(endPoint, executor, scheduler, pool, session, masks);
        this.pool = pool;
        drained = session.getHandler() instanceof InputDrained handler ? handler : null;
        if (drained != null) {
            drained.drainSignalled();
        }
    }

    @Override
    public void onUpgradeTo(ByteBuffer buffer) {
        final ByteBuffer copy = ByteBuffer.allocate(buffer.remaining());
        copy.put(buffer).flip();
        prefill = copy;
    }

    /** The first demand gives Jetty's parser the bytes read with the upgrade: the frame pump did not take them. */
    @Override
    public void demand() {
        keepOnJettysPath();
        super.demand();
    }

    /** Hands the bytes read with the upgrade to Jetty's parser: the connection relays on Jetty's path. */
    private void keepOnJettysPath() {
        final ByteBuffer bytes = prefill;
        if (bytes != null) {
            prefill = null;
            setInitialBuffer(bytes);
        }
    }

    /** The bytes read with the upgrade, for the {@link FramePump}; null when there were none. */
    ByteBuffer takePrefill() {
        final ByteBuffer bytes = prefill;
        prefill = null;
        return bytes;
    }

    ByteBufferPool pool() {
        return pool;
    }

    @Override
    public void fillInterested() {
        if (drained != null) {
            drained.inputDrained();
        }
        fillInterested(inlineFillable);
    }
}
