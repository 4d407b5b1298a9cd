package io.wsguard.metrics;

/**
 * The buckets of {@code wsguard_message_size_bytes}: 64 B to 16 MiB, each four times the last, and
 * {@code +Inf}. A relay keeps one count per bucket per direction of its own connection and bumps it
 * with {@link #bucket(long)} (a leading-zero count and two shifts: no branch per bound, no
 * allocation); the route's histogram adds them up at scrape time, as it does messages and bytes.
 */
public final class MessageSizes {

    /** Buckets, {@code +Inf} included: indexes 0 to {@code BUCKETS - 1}. */
    public static final int BUCKETS = 11;

    /** The upper bound of each bucket, in bytes (inclusive, as Prometheus' {@code le}). */
    static final double[] UPPER_BOUNDS = {
        64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, Double.POSITIVE_INFINITY
    };

    private MessageSizes() {}

    /** The bucket of a message of {@code size} bytes: the first whose upper bound is {@code >= size}. */
    public static int bucket(long size) {
        // Bits of size - 1 are ceil(log2(size)): 64 (2^6) is bucket 0, each bucket two bits more.
        final int bits = 64 - Long.numberOfLeadingZeros(Math.max(size - 1, 0));
        return Math.min(Math.max(0, (bits - 5) >> 1), BUCKETS - 1);
    }
}
