package io.wsguard.relay;

import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.CoreSession;

/**
 * One side of a proxied connection, as {@link ProxySession}'s close handshake sees it, whichever path
 * relays its frames: Jetty's WebSocket session ({@link #of(CoreSession)}) or the {@link FramePump}.
 *
 * <p>A side's connection closes once a CLOSE went each way: after wsguard's CLOSE was written and
 * the peer's arrived (or the peer broke the protocol, and nothing more is read from it). A received
 * CLOSE is handed over with a callback; completing it without having sent a CLOSE on that side
 * sends one back with the same code, as Jetty's session does.
 */
interface Leg {

    /** Sends wsguard's own CLOSE; the side then reads on until the peer's answers it. */
    void close(int code, String reason);

    /** Sends {@code status} as a CLOSE (relayed from the peer, or the answer to this side's); then {@code written}. */
    void sendClose(CloseStatus status, Callback written);

    /** Drops the connection without a close handshake. */
    void abort();

    boolean isClosed();

    /** Jetty's session as a leg: the path for routes with message rules or permessage-deflate. */
    static Leg of(CoreSession session) {
        return new Leg() {
            @Override
            public void close(int code, String reason) {
                session.close(code, reason, Callback.NOOP);
            }

            @Override
            public void sendClose(CloseStatus status, Callback written) {
                session.sendFrame(status.toFrame(), written, false);
            }

            @Override
            public void abort() {
                session.abort();
            }

            @Override
            public boolean isClosed() {
                return session.isClosed();
            }
        };
    }
}
