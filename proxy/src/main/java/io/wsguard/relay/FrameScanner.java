package io.wsguard.relay;

import java.nio.ByteBuffer;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.OpCode;
import org.eclipse.jetty.websocket.core.exception.CloseException;
import org.eclipse.jetty.websocket.core.exception.MessageTooLargeException;
import org.eclipse.jetty.websocket.core.exception.ProtocolException;

/**
 * Walks the WebSocket frames (RFC 6455 §5.2) of one direction as its bytes arrive, in the buffers the
 * {@link FramePump} reads, without copying them: it checks every header, re-masks the client's
 * frames in place with a key of wsguard's own, and tells the pump how far the buffer may be
 * written to the other side.
 *
 * <p>A buffer may end anywhere. A data frame's payload streams: its bytes are ready as they come.
 * A frame's header, and a whole control frame (at most 139 bytes), are only ready once all of it
 * is in: the key is rewritten and the checks are made before any byte of the frame goes on, so a
 * frame the checks refuse never reaches the peer. The bytes of an unfinished header or control
 * frame stay in the buffer ({@link #scan} stops before them) for the next read to complete.
 *
 * <p>The checks and their messages are Jetty's ({@code Parser}, {@code FrameValidation}, the
 * session's frame sequence, {@link CloseStatus}), so that a connection gets the same close code
 * and audit detail whichever path relays it: the length over 2^31 (1009), RSV bits (no extension is
 * negotiated on a pumped connection), reserved opcodes, control frames over 125 bytes or
 * fragmented, the mask (a client's frames must be masked, an upstream's must not), a CONTINUATION
 * without a message or a new message inside one, and a CLOSE's code and UTF-8 reason (1002, 1007).
 *
 * <p>Used by one thread at a time: the pump reads a side again only after its last write completed.
 */
final class FrameScanner {

    /** Why {@link #scan} stopped. */
    enum Stop {
        /** All whole frames passed; the bytes after {@code end} (if any) are an unfinished header or control frame. */
        MORE,
        /** A valid CLOSE frame starts at {@code end}: {@link #closeStatus()}, {@link #closeFrameLength()}. */
        CLOSE,
        /** The frame at {@code end} breaks the protocol: {@link #refusal()}. */
        REFUSED,
        /** The frame at {@code end} takes its message over a limit that the {@link Limits} enforced. */
        LIMIT
    }

    /** What a direction's messages may be, and where they are counted. */
    interface Limits {
        /**
         * The frame about to pass takes its message over {@code maxSize} ({@code fragments}: over
         * {@code maxFragments}); called once per message. Returns whether it must stop there
         * (enforce); false lets it pass (monitor: reported only).
         */
        boolean overLimit(boolean fragments);

        /** A whole message of {@code size} payload bytes passed (its last frame's header did). */
        void message(long size);
    }

    /** The largest control frame: a 2-byte header, an 8-byte length (legal, if wasteful), a key and 125 bytes. */
    static final int MAX_CONTROL_FRAME = 2 + 8 + 4 + 125;

    private static final long LENGTH_LIMIT = Integer.MAX_VALUE;

    private final boolean fromClient;
    private final MaskKeys keys;
    private final long maxSize;
    private final long maxFragments;
    private final Limits limits;

    /** Payload bytes of the current data frame still to come. */
    private long payloadLeft;
    /** Client frames: the XOR of the frame's key and wsguard's, as a big-endian int at payload offset 0. */
    private int remask;
    /** Payload bytes of the current data frame already passed: where {@link #remask} stands. */
    private long payloadDone;

    /** A fragmented data message is open: only CONTINUATION (or a control frame) may come next. */
    private boolean inMessage;

    private long messageBytes;
    private long fragments;
    private boolean overLimit;

    /** Closing: frames are still walked (to find the peer's CLOSE) but counted as discarded, never as messages. */
    private boolean discarding;

    private Stop stop = Stop.MORE;
    private int discardedFrames;
    private int dataFrames;
    private CloseException refusal;
    private CloseStatus closeStatus;
    private int closeFrameLength;

    /**
     * @param fromClient the client's direction: frames must be masked, and are re-masked for the
     *     upstream with keys from {@code keys}; else the upstream's: frames must not be masked
     * @param keys where a client frame's new key comes from (null for the upstream's direction)
     */
    FrameScanner(boolean fromClient, MaskKeys keys, long maxSize, long maxFragments, Limits limits) {
        this.fromClient = fromClient;
        this.keys = keys;
        this.maxSize = maxSize;
        this.maxFragments = maxFragments;
        this.limits = limits;
    }

    /** From now on frames are discarded, not relayed: nothing more is counted or limited. */
    void discard() {
        discarding = true;
    }

    /**
     * Walks {@code buf}'s bytes from {@code from} to {@code to} (absolute indexes; position and limit
     * are left alone), checking, re-masking and counting, and returns {@code end}: the bytes from
     * {@code from} to {@code end} may be written to the peer as they now are. Why it stopped at
     * {@code end} is {@link #stop}'s answer.
     */
    int scan(ByteBuffer buf, int from, int to) {
        discardedFrames = 0;
        dataFrames = 0;
        int at = from;
        if (payloadLeft > 0) {
            at = passPayload(buf, at, to);
            if (payloadLeft > 0) {
                stop = Stop.MORE;
                return at;
            }
        }
        while (at < to) {
            final int available = to - at;
            if (available < 2) {
                break;
            }
            final int b0 = buf.get(at) & 0xFF;
            final int b1 = buf.get(at + 1) & 0xFF;
            final boolean masked = (b1 & 0x80) != 0;
            final int length7 = b1 & 0x7F;
            final int lengthBytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
            if (available < 2 + lengthBytes) {
                break;
            }
            long length = length7;
            if (lengthBytes == 2) {
                length = buf.getShort(at + 2) & 0xFFFF;
            } else if (lengthBytes == 8) {
                length = buf.getLong(at + 2);
            }
            if (length < 0 || length > LENGTH_LIMIT) {
                // Jetty's parser: a length that a Java array cannot hold, the 64-bit length's top bit included.
                return refused(at, new MessageTooLargeException("Frame payload exceeded integer max value"));
            }
            final byte opcode = (byte) (b0 & 0x0F);
            final boolean fin = (b0 & 0x80) != 0;
            final boolean control = OpCode.isControlFrame(opcode);
            final CloseException invalid = invalid(b0, opcode, fin, control, masked, length);
            if (invalid != null) {
                return refused(at, invalid);
            }
            final int header = 2 + lengthBytes + (masked ? 4 : 0);
            if (control) {
                final int whole = header + (int) length;
                if (available < whole) {
                    break;
                }
                if (opcode == OpCode.CLOSE) {
                    return closeFrame(buf, at, header, (int) length);
                }
                if (fromClient) {
                    remaskHeader(buf, at + header - 4);
                    xor(buf, at + header, whole - header, remask);
                }
                at += whole;
                continue;
            }
            if (available < header) {
                break;
            }
            if (opcode != OpCode.CONTINUATION) {
                messageBytes = 0;
                fragments = 0;
                overLimit = false;
            }
            inMessage = !fin;
            if (discarding) {
                discardedFrames++;
            } else {
                dataFrames++;
                messageBytes += length;
                fragments++;
                if (!overLimit && (messageBytes > maxSize || fragments > maxFragments)) {
                    overLimit = true;
                    if (limits.overLimit(messageBytes <= maxSize)) {
                        stop = Stop.LIMIT;
                        return at;
                    }
                }
                if (fin) {
                    limits.message(messageBytes);
                }
            }
            if (fromClient) {
                remaskHeader(buf, at + header - 4);
            }
            at += header;
            payloadLeft = length;
            payloadDone = 0;
            at = passPayload(buf, at, to);
            if (payloadLeft > 0) {
                stop = Stop.MORE;
                return at;
            }
        }
        stop = Stop.MORE;
        return at;
    }

    /** Why the last {@link #scan} stopped. */
    Stop stop() {
        return stop;
    }

    /** Data frames the last {@link #scan} walked while {@linkplain #discard() discarding}. */
    int discardedFrames() {
        return discardedFrames;
    }

    /** Data frames whose header the last {@link #scan} passed (not discarding): what a failed write loses. */
    int dataFrames() {
        return dataFrames;
    }

    /** After {@link Stop#REFUSED}: the refusal, as Jetty's exception (its close code and message). */
    CloseException refusal() {
        return refusal;
    }

    /** After {@link Stop#CLOSE}: the CLOSE's code and reason, checked. */
    CloseStatus closeStatus() {
        return closeStatus;
    }

    /** After {@link Stop#CLOSE}: the CLOSE frame's length in the buffer, header included. */
    int closeFrameLength() {
        return closeFrameLength;
    }

    /** Jetty's frame checks, in Jetty's order, on a whole header; null when the frame may pass. */
    private CloseException invalid(int b0, byte opcode, boolean fin, boolean control, boolean masked, long length) {
        if (control && length > 125) {
            return new ProtocolException("Invalid control frame payload length, [" + length + "] cannot exceed [125]");
        }
        if (!OpCode.isKnown(opcode)) {
            return new ProtocolException("Unknown opcode: " + opcode);
        }
        if (control && !fin) {
            return new ProtocolException("Fragmented Control Frame [" + OpCode.name(opcode) + "]");
        }
        if ((b0 & 0x70) != 0) {
            // No extension is ever negotiated on a pumped connection: no RSV bit has a meaning.
            final int rsv = (b0 & 0x40) != 0 ? 1 : (b0 & 0x20) != 0 ? 2 : 3;
            return new ProtocolException(
                    control
                            ? "Cannot have RSV" + rsv + "==true on Control frames"
                            : "RSV" + rsv + " not allowed to be set");
        }
        if (masked != fromClient) {
            return new ProtocolException(
                    fromClient
                            ? "Client MUST mask all frames (RFC-6455: Section 5.1)"
                            : "Server MUST NOT mask any frames (RFC-6455: Section 5.1)");
        }
        if (!control) {
            if (opcode == OpCode.CONTINUATION && !inMessage) {
                return new ProtocolException("CONTINUATION after fin==true");
            }
            if (opcode != OpCode.CONTINUATION && inMessage) {
                return new ProtocolException("DataFrame before fin==true");
            }
        }
        return null;
    }

    private int refused(int at, CloseException why) {
        refusal = why;
        stop = Stop.REFUSED;
        return at;
    }

    /** A whole CLOSE frame at {@code at}: its payload unmasked into a copy and checked as Jetty checks it. */
    private int closeFrame(ByteBuffer buf, int at, int header, int length) {
        final byte[] payload = new byte[length];
        buf.get(at + header, payload, 0, length);
        if (fromClient) {
            final int key = buf.getInt(at + header - 4);
            for (int i = 0; i < length; i++) {
                payload[i] ^= (byte) (key >>> (24 - 8 * (i & 3)));
            }
        }
        try {
            closeStatus =
                    length == 0 ? new CloseStatus(CloseStatus.NO_CODE) : new CloseStatus(ByteBuffer.wrap(payload));
        } catch (CloseException invalid) {
            return refused(at, invalid);
        }
        closeFrameLength = header + length;
        stop = Stop.CLOSE;
        return at;
    }

    /** Replaces a client frame's key (at {@code keyAt}) with a fresh one; {@link #remask} turns one into the other. */
    private void remaskHeader(ByteBuffer buf, int keyAt) {
        final int own = keys.nextKey();
        remask = buf.getInt(keyAt) ^ own;
        buf.putInt(keyAt, own);
    }

    /** Passes up to {@link #payloadLeft} payload bytes from {@code at}, re-masking a client's; returns the end. */
    private int passPayload(ByteBuffer buf, int at, int to) {
        final int n = (int) Math.min(payloadLeft, to - at);
        if (fromClient && n > 0) {
            xor(buf, at, n, Integer.rotateLeft(remask, 8 * (int) (payloadDone & 3)));
        }
        payloadLeft -= n;
        payloadDone += n;
        return at + n;
    }

    /**
     * XORs {@code n} bytes from {@code at} with {@code key} (big-endian, its first byte at {@code at}),
     * eight bytes at a time: one pass turns the client's masking into wsguard's.
     */
    static void xor(ByteBuffer buf, int at, int n, int key) {
        final long wide = ((long) key << 32) | (key & 0xFFFFFFFFL);
        int i = at;
        final int end = at + n;
        for (; i + 8 <= end; i += 8) {
            buf.putLong(i, buf.getLong(i) ^ wide);
        }
        for (; i < end; i++) {
            buf.put(i, (byte) (buf.get(i) ^ (key >>> (24 - 8 * ((i - at) & 3)))));
        }
    }
}
