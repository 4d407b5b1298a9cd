package io.wsguard.relay;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeoutException;
import org.eclipse.jetty.io.AbstractConnection;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.RetainableByteBuffer;
import org.eclipse.jetty.io.ssl.SslConnection;
import org.eclipse.jetty.util.BufferUtil;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.IteratingCallback;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.Frame;
import org.eclipse.jetty.websocket.core.OpCode;
import org.eclipse.jetty.websocket.core.exception.CloseException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Relays a connection's frames between the client's and the upstream's Jetty {@link EndPoint}s as
 * bytes, the way a byte tunnel does, once both upgrades are done: on routes without message rules
 * and without an extension, where Jetty's per-frame machinery (a frame object, callbacks, a queue, a
 * flusher and a generator for each 64-byte frame) was most of the relay's CPU.
 *
 * <p>Each side is read into one pooled buffer. A {@link FrameScanner} walks the frame headers in it,
 * checks them as Jetty's parser would and re-masks a client's frames in place, and everything it
 * passed is written to the other side in one write, however many frames that is. The side is read
 * again only once that write completed: one bounded buffer per direction, so a slow reader stops its
 * sender as before. The buffer goes back to the pool whenever a side waits for input with nothing
 * left over, so an idle connection holds none.
 *
 * <p>CLOSE frames, refusals and the end of each side go to {@link ProxySession}, which runs the close
 * handshake through each side's {@link Leg} exactly as on Jetty's path.
 */
final class FramePump {

    private static final Logger LOG = LoggerFactory.getLogger(FramePump.class);

    /** What a pumped side tells the session; implemented by the session's side. */
    interface Owner extends FrameScanner.Limits {
        /** The connection is closing: what is read now is discarded, only the peer's CLOSE matters. */
        boolean closing();

        /** A valid CLOSE arrived; {@code done} completes once it is answered or relayed. */
        void closeFrame(Frame close, Callback done);

        /** A frame broke the protocol; nothing more is read from this side. */
        void refused(CloseException refusal);

        /** Data frames that went nowhere because the connection was closing or the peer was gone. */
        void discarded(int frames);

        /** This side's connection closed. */
        void closed();

        /** No byte went either way for the idle timeout; returns whether to drop the connection at once. */
        boolean idle();
    }

    private FramePump() {}

    /**
     * Takes over both sides' endpoints from Jetty's WebSocket connections, which are left unread and
     * unreferenced, with the bytes either had already read; returns the client's and the upstream's
     * legs, {@code [0]} and {@code [1]}. Call {@link Link#start()} on both once the session is ready
     * for their frames.
     */
    static Link[] takeOver(
            InlineWebSocketConnection client,
            Owner clientOwner,
            InlineWebSocketConnection upstream,
            Owner upstreamOwner,
            long[] maxSize,
            long[] maxFragments,
            int bufferSize) {
        final MaskKeys keys = new MaskKeys();
        // Direct buffers save plain sockets a copy; TLS decrypts into and encrypts from heap arrays faster.
        final boolean direct = !(client.getEndPoint() instanceof SslConnection.SslEndPoint)
                && !(upstream.getEndPoint() instanceof SslConnection.SslEndPoint);
        final Link clientLink = new Link(
                client,
                clientOwner,
                new FrameScanner(true, keys, maxSize[0], maxFragments[0], clientOwner),
                false,
                keys,
                bufferSize,
                direct);
        final Link upstreamLink = new Link(
                upstream,
                upstreamOwner,
                new FrameScanner(false, null, maxSize[1], maxFragments[1], upstreamOwner),
                true,
                keys,
                bufferSize,
                direct);
        clientLink.peer = upstreamLink;
        upstreamLink.peer = clientLink;
        return new Link[] {clientLink, upstreamLink};
    }

    /**
     * One side: reads its frames and relays them to the peer, and writes what the peer relays and the
     * CLOSE frames of the close handshake onto it.
     */
    static final class Link extends AbstractConnection implements Leg {

        private final Owner owner;
        private final FrameScanner scanner;
        /** The upstream's side: frames written onto it are masked, as a client's must be. */
        private final boolean masksOutput;

        private final MaskKeys keys;
        private final ByteBufferPool pool;
        private final int bufferSize;
        private final boolean direct;
        private final Reader reader = new Reader();
        private final Callback fillable;
        private final Callback writeDone = new WriteDone();
        private Link peer;

        // The reading side, touched only by the reader's thread of the moment.
        private RetainableByteBuffer buffer;
        /** Bytes read with the upgrade, before the pump took over; null once used. */
        private ByteBuffer prefill;
        /** The buffer's limit while a write of its first bytes is in flight. */
        private int savedLimit = -1;
        /** Data frames in the write in flight: what is discarded if it fails. */
        private int framesInFlight;

        // The writing side, guarded by this.
        private boolean writing;
        private ByteBuffer relayQueued;
        private Link relayQueuedFrom;
        private Link relayInFlightFrom;
        private ByteBuffer closeQueued;
        private Callback closeQueuedDone;
        private Callback closeInFlightDone;
        private boolean outputClosed;
        private boolean closeWritten;
        /** Nothing more is read: the CLOSE arrived, the peer broke the protocol, or the input ended. */
        private volatile boolean inputClosed;

        private volatile boolean disconnected;

        private Link(
                InlineWebSocketConnection jetty,
                Owner owner,
                FrameScanner scanner,
                boolean masksOutput,
                MaskKeys keys,
                int bufferSize,
                boolean direct) {
            super(jetty.getEndPoint(), jetty.getExecutor());
            this.owner = owner;
            this.scanner = scanner;
            this.masksOutput = masksOutput;
            this.keys = keys;
            this.pool = jetty.pool();
            this.bufferSize = bufferSize;
            this.direct = direct;
            this.prefill = jetty.takePrefill();
            this.fillable = new NonBlockingCallback(Callback.from(reader::iterate, failure -> reader.iterate()));
            getEndPoint().setConnection(this);
        }

        /** Starts reading: the first bytes are those read with the upgrade, if any. */
        void start() {
            onOpen();
            reader.iterate();
        }

        @Override
        public void onFillable() {
            reader.iterate();
        }

        @Override
        public boolean onIdleExpired(TimeoutException timeout) {
            return owner.idle();
        }

        @Override
        public void onClose(Throwable cause) {
            super.onClose(cause);
            disconnected = true;
            if (LOG.isDebugEnabled()) {
                LOG.debug("pumped side closed: {}", String.valueOf(cause));
            }
            // A reader waiting for a write of the peer's runs once more and gives its buffer back.
            reader.iterate();
            owner.closed();
        }

        // ------------------------------------------------------------------ reading

        /** The scan stopped at a CLOSE or a refusal: the input ends there. */
        private void stopped(FrameScanner.Stop stop) {
            inputClosed = true;
            if (stop == FrameScanner.Stop.CLOSE) {
                final CloseStatus status = scanner.closeStatus();
                final Frame close = status.getCode() == CloseStatus.NO_CODE
                        ? new Frame(OpCode.CLOSE)
                        : new Frame(OpCode.CLOSE, true, status.asPayloadBuffer());
                owner.closeFrame(close, Callback.from(this::closeAnswered, failure -> closeAnswered()));
            } else {
                final CloseException refusal = scanner.refusal();
                if (owner.closing()) {
                    // Already closing: the CLOSE wsguard sent is the last word; no reply is awaited now.
                    close(refusal.getStatusCode(), "");
                    disconnectIfDone();
                } else {
                    owner.refused(refusal);
                }
            }
        }

        /** The end of the input, or a failure to read: the connection goes, and the session hears of it. */
        private void inputEnded(Throwable failure) {
            inputClosed = true;
            release();
            if (LOG.isDebugEnabled()) {
                LOG.debug("pumped side's input ended: {}", String.valueOf(failure));
            }
            getEndPoint().close(failure);
        }

        /** The peer wrote (or, {@code ok} false, could not write) what this side relayed: read on. */
        private void relayed(boolean ok) {
            if (!ok) {
                // Never written: these bytes are skipped, not scanned and sent again.
                final ByteBuffer bytes = buffer.getByteBuffer();
                bytes.position(bytes.limit());
                if (framesInFlight > 0) {
                    owner.discarded(framesInFlight);
                }
            }
            framesInFlight = 0;
            reader.succeeded();
        }

        private void release() {
            final RetainableByteBuffer held = buffer;
            if (held != null && savedLimit < 0) {
                buffer = null;
                held.clear();
                held.release();
            }
        }

        /** Reads this side, scans what it read and hands the checked bytes to the peer; on again once written. */
        private final class Reader extends IteratingCallback {
            @Override
            protected Action process() {
                try {
                    return read();
                } catch (RuntimeException bug) {
                    // Never a reader left dead with its socket open: the connection goes, the session hears of it.
                    LOG.warn("frame pump failed; closing the connection", bug);
                    inputClosed = true;
                    getEndPoint().close(bug);
                    return Action.IDLE;
                }
            }

            /** Reads, scans and hands the checked bytes to the peer; on again once they are written. */
            private Action read() {
                if (savedLimit >= 0) {
                    // The write of the buffer's first bytes completed: its left-over bytes come back into view.
                    buffer.getByteBuffer().limit(savedLimit);
                    savedLimit = -1;
                }
                while (true) {
                    if (inputClosed || disconnected) {
                        release();
                        return Action.IDLE;
                    }
                    if (buffer == null) {
                        buffer = pool.acquire(bufferSize, direct);
                        if (prefill != null) {
                            final ByteBuffer into = buffer.getByteBuffer();
                            // Never more than the upgrade read: a buffer the size of Jetty's own input buffer holds it.
                            BufferUtil.append(into, prefill);
                            if (!prefill.hasRemaining()) {
                                prefill = null;
                            }
                        }
                    }
                    final ByteBuffer bytes = buffer.getByteBuffer();
                    if (bytes.hasRemaining()) {
                        final Action scanned = scan(bytes);
                        if (scanned != null) {
                            return scanned;
                        }
                    }
                    // Whatever is left is an unfinished header or control frame: moved to the front, read on after it.
                    BufferUtil.compact(bytes);
                    final int filled;
                    try {
                        filled = getEndPoint().fill(bytes);
                    } catch (IOException failure) {
                        inputEnded(failure);
                        return Action.IDLE;
                    }
                    if (filled < 0) {
                        inputEnded(null);
                        return Action.IDLE;
                    }
                    if (filled == 0) {
                        if (!bytes.hasRemaining()) {
                            release();
                        }
                        getEndPoint().fillInterested(fillable);
                        return Action.IDLE;
                    }
                }
            }

            /**
             * Scans the buffer's unwritten bytes and starts writing what passed; null when nothing could be
             * written yet (an unfinished header), so that the caller reads more.
             */
            private Action scan(ByteBuffer bytes) {
                final boolean closing = owner.closing();
                if (closing) {
                    scanner.discard();
                }
                final int from = bytes.position();
                final int end = scanner.scan(bytes, from, bytes.limit());
                final FrameScanner.Stop stop = scanner.stop();
                if (closing) {
                    // Closing: nothing more is relayed, and what is dropped is counted.
                    bytes.position(end);
                    if (scanner.discardedFrames() > 0) {
                        owner.discarded(scanner.discardedFrames());
                    }
                    if (stop != FrameScanner.Stop.MORE) {
                        stopped(stop);
                        return read();
                    }
                    return null;
                }
                boolean writes = end > from;
                if (writes) {
                    savedLimit = bytes.limit();
                    bytes.limit(end);
                    framesInFlight = scanner.dataFrames();
                    peer.relay(bytes, Link.this);
                }
                if (stop == FrameScanner.Stop.LIMIT) {
                    // The limit closed the connection (enforce): the rest of the input is read and discarded.
                    scanner.discard();
                } else if (stop != FrameScanner.Stop.MORE) {
                    stopped(stop);
                }
                if (writes) {
                    return Action.SCHEDULED;
                }
                // Nothing to write: read more; after a LIMIT scan again, now discarding; a CLOSE or a refusal ended the
                // input.
                return stop == FrameScanner.Stop.MORE ? null : read();
            }

            @Override
            public InvocationType getInvocationType() {
                return InvocationType.NON_BLOCKING;
            }
        }

        // ------------------------------------------------------------------ writing

        /** Writes {@code bytes} relayed by {@code from} after any write in flight; dropped once our CLOSE went. */
        void relay(ByteBuffer bytes, Link from) {
            boolean start = false;
            boolean dropped = false;
            synchronized (this) {
                if (outputClosed || disconnected) {
                    dropped = true;
                } else if (writing) {
                    relayQueued = bytes;
                    relayQueuedFrom = from;
                } else {
                    writing = true;
                    relayInFlightFrom = from;
                    start = true;
                }
            }
            if (dropped) {
                bytes.position(bytes.limit());
                from.relayed(false);
            } else if (start) {
                getEndPoint().write(writeDone, bytes);
            }
        }

        @Override
        public void close(int code, String reason) {
            sendClose(new CloseStatus(code, reason), Callback.NOOP);
        }

        @Override
        public void sendClose(CloseStatus status, Callback written) {
            final ByteBuffer frame = closeFrame(status);
            boolean start = false;
            synchronized (this) {
                if (outputClosed || disconnected) {
                    start = false;
                    frame.position(frame.limit());
                } else {
                    outputClosed = true;
                    if (writing) {
                        closeQueued = frame;
                        closeQueuedDone = written;
                        return;
                    }
                    writing = true;
                    closeInFlightDone = written;
                    start = true;
                }
            }
            if (start) {
                getEndPoint().write(writeDone, frame);
            } else {
                written.failed(new IOException("the connection is already closing"));
            }
        }

        @Override
        public void abort() {
            getEndPoint().close();
        }

        @Override
        public boolean isClosed() {
            return disconnected;
        }

        /** The session is done with the CLOSE this side sent: answer it unless wsguard already sent one. */
        private void closeAnswered() {
            final boolean answer;
            synchronized (this) {
                answer = !outputClosed;
            }
            if (answer) {
                final CloseStatus received = scanner.closeStatus();
                sendClose(received, Callback.NOOP);
            } else {
                disconnectIfDone();
            }
        }

        /** A CLOSE went each way (or the input ended): the connection closes once the CLOSE is written. */
        private void disconnectIfDone() {
            final boolean done;
            synchronized (this) {
                done = closeWritten && inputClosed && !disconnected;
            }
            if (done) {
                getEndPoint().close();
            }
        }

        /** A CLOSE frame with {@code status}: masked with a fresh key toward the upstream, as a client's must be. */
        private ByteBuffer closeFrame(CloseStatus status) {
            final ByteBuffer payload =
                    status.getCode() == CloseStatus.NO_CODE ? BufferUtil.EMPTY_BUFFER : status.asPayloadBuffer();
            final int length = payload.remaining();
            final ByteBuffer frame = ByteBuffer.allocate(2 + (masksOutput ? 4 : 0) + length);
            frame.put((byte) (0x80 | OpCode.CLOSE));
            frame.put((byte) ((masksOutput ? 0x80 : 0) | length));
            final int payloadAt = frame.position() + (masksOutput ? 4 : 0);
            final int key = masksOutput ? keys.nextKey() : 0;
            if (masksOutput) {
                frame.putInt(key);
            }
            frame.put(payload);
            frame.flip();
            if (masksOutput) {
                FrameScanner.xor(frame, payloadAt, length, key);
            }
            return frame;
        }

        private final class WriteDone implements Callback {
            @Override
            public void succeeded() {
                completed(true, null);
            }

            @Override
            public void failed(Throwable failure) {
                completed(false, failure);
            }

            @Override
            public InvocationType getInvocationType() {
                return InvocationType.NON_BLOCKING;
            }
        }

        /** The write in flight completed: the next one starts, then whoever asked for this one hears of it. */
        private void completed(boolean ok, Throwable failure) {
            final Link relayFrom;
            final Callback closeDone;
            ByteBuffer next = null;
            synchronized (this) {
                relayFrom = relayInFlightFrom;
                closeDone = closeInFlightDone;
                relayInFlightFrom = null;
                closeInFlightDone = null;
                if (closeDone != null) {
                    closeWritten = true;
                }
                if (!ok) {
                    // The connection is gone: nothing queued can be written either.
                    writing = false;
                } else if (relayQueued != null) {
                    next = relayQueued;
                    relayInFlightFrom = relayQueuedFrom;
                    relayQueued = null;
                    relayQueuedFrom = null;
                } else if (closeQueued != null) {
                    next = closeQueued;
                    closeInFlightDone = closeQueuedDone;
                    closeQueued = null;
                    closeQueuedDone = null;
                } else {
                    writing = false;
                }
            }
            if (!ok) {
                failQueued(failure);
            }
            if (next != null) {
                getEndPoint().write(writeDone, next);
            }
            if (relayFrom != null) {
                relayFrom.relayed(ok);
            } else if (closeDone != null) {
                if (ok) {
                    closeDone.succeeded();
                } else {
                    closeDone.failed(failure);
                }
                disconnectIfDone();
            }
        }

        private void failQueued(Throwable failure) {
            final Link relayFrom;
            final ByteBuffer relayBytes;
            final Callback closeDone;
            synchronized (this) {
                relayFrom = relayQueuedFrom;
                relayBytes = relayQueued;
                closeDone = closeQueuedDone;
                relayQueued = null;
                relayQueuedFrom = null;
                closeQueued = null;
                closeQueuedDone = null;
            }
            if (relayFrom != null) {
                relayBytes.position(relayBytes.limit());
                relayFrom.relayed(false);
            }
            if (closeDone != null) {
                closeDone.failed(failure);
            }
            getEndPoint().close(failure);
        }
    }
}
