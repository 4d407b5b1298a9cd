package io.wsguard.relay;

import java.security.SecureRandom;
import java.util.Random;

/**
 * The masking keys of one upstream connection's frames (RFC 6455 §5.3: unpredictable, from a strong
 * source of entropy), drawn from the JVM's {@link SecureRandom} 64 bytes at a time.
 *
 * <p>Jetty's client gives every connection a {@code new SecureRandom()} and asks it for 4 bytes per
 * frame. On Linux that is {@code NativePRNG}, whose every call takes one JVM-wide lock and mixes in
 * {@code /dev/urandom}: 5% of the proxy's CPU relaying small messages. Taking the same generator's
 * output in blocks keeps its strength and makes one call serve sixteen frames.
 *
 * <p>Jetty only calls {@link #nextBytes(byte[])}; every other {@link Random} method goes through
 * {@link #next(int)}, so no value ever comes from {@code Random}'s own linear generator.
 */
final class MaskKeys extends Random {

    private static final long serialVersionUID = 1L;
    private static final int BLOCK = 64;
    private static final SecureRandom SOURCE = new SecureRandom();

    private final byte[] block = new byte[BLOCK];
    private int used = BLOCK;

    @Override
    public synchronized void nextBytes(byte[] bytes) {
        for (int i = 0; i < bytes.length; i++) {
            if (used == BLOCK) {
                SOURCE.nextBytes(block);
                used = 0;
            }
            bytes[i] = block[used];
            // Handed out once: a key left in the block must not outlive its use.
            block[used++] = 0;
        }
    }

    /** A fresh 32-bit key, as a big-endian int: what the frame pump writes into each frame it masks. */
    synchronized int nextKey() {
        if (used > BLOCK - 4) {
            SOURCE.nextBytes(block);
            used = 0;
        }
        int key = 0;
        for (int i = 0; i < 4; i++) {
            key = key << 8 | (block[used] & 0xFF);
            // Handed out once, as in nextBytes.
            block[used++] = 0;
        }
        return key;
    }

    @Override
    protected int next(int bits) {
        final byte[] four = new byte[4];
        nextBytes(four);
        final int value = (four[0] & 0xFF) << 24 | (four[1] & 0xFF) << 16 | (four[2] & 0xFF) << 8 | (four[3] & 0xFF);
        return value >>> (32 - bits);
    }
}
