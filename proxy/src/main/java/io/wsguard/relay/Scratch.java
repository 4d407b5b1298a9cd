package io.wsguard.relay;

import java.nio.ByteBuffer;

/**
 * A per-thread byte array to inspect a message that arrived in a direct (off-heap) buffer: the
 * content checks read arrays, and copying into a reused one costs no allocation per message.
 * Only arrays up to {@link #RETAINED} are kept per thread; a larger message gets its own.
 */
final class Scratch {

    static final int RETAINED = 64 * 1024;

    private static final ThreadLocal<byte[]> BUFFER = ThreadLocal.withInitial(() -> new byte[4096]);

    private Scratch() {}

    /**
     * The remaining bytes of {@code payload} copied to the start of an array (without moving its
     * position). Valid until the same thread calls this again.
     */
    static byte[] copy(ByteBuffer payload) {
        final int length = payload.remaining();
        byte[] bytes = BUFFER.get();
        if (bytes.length < length) {
            bytes = new byte[Math.max(length, Math.min(bytes.length * 2, RETAINED))];
            if (bytes.length <= RETAINED) {
                BUFFER.set(bytes);
            }
        }
        payload.get(payload.position(), bytes, 0, length);
        return bytes;
    }
}
