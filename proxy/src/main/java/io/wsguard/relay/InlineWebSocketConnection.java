package io.wsguard.relay;

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
        drained = session.getHandler() instanceof InputDrained handler ? handler : null;
        if (drained != null) {
            drained.drainSignalled();
        }
    }

    @Override
    public void fillInterested() {
        if (drained != null) {
            drained.inputDrained();
        }
        fillInterested(inlineFillable);
    }
}
