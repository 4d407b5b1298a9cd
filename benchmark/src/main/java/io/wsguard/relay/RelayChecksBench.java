package io.wsguard.relay;

import io.github.bucket4j.Bucket;
import io.wsguard.limit.KeyedBuckets;
import io.wsguard.policy.Action;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.policy.Rate;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The per-message checks the relay runs itself on an inspected route, each on the allow path: UTF-8
 * validation of a whole text message (heap and direct buffers, as Jetty delivers them), the
 * per-connection message and byte buckets, and the per-subject bucket shared across connections.
 * In package {@code io.wsguard.relay} to reach the package-private validator.
 */
@State(Scope.Thread)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class RelayChecksBench {

    /** Message size in bytes. */
    @Param({"64", "1024"})
    public int size;

    /** {@code ascii}: chat text in English; {@code mixed}: one non-ASCII character in eight. */
    @Param({"ascii", "mixed"})
    public String text;

    private final Utf8Check utf8 = new Utf8Check();
    private ByteBuffer heap;
    private ByteBuffer direct;
    private Bucket messages;
    private Bucket bytes;
    private KeyedBuckets subjects;

    @Setup
    public void setUp() {
        final StringBuilder builder = new StringBuilder();
        final String unit = text.equals("ascii") ? "hello, world! " : "héllo wörld ✓ ";
        while (builder.toString().getBytes(StandardCharsets.UTF_8).length < size) {
            builder.append(unit);
        }
        byte[] encoded = builder.toString().getBytes(StandardCharsets.UTF_8);
        // Cut at a character boundary at or below size.
        int end = Math.min(size, encoded.length);
        while (end > 0 && (encoded[end - 1] & 0xC0) == 0x80) {
            end--;
        }
        if (end > 0 && (encoded[end - 1] & 0x80) != 0) {
            end--;
        }
        encoded = java.util.Arrays.copyOf(encoded, end);
        heap = ByteBuffer.wrap(encoded);
        direct = ByteBuffer.allocateDirect(encoded.length).put(encoded).flip();
        final MessageRules rules = new MessageRules(
                64 * 1024,
                true,
                null,
                Action.CLOSE,
                new RateLimitPolicy(new Rate(1_000_000_000, Duration.ofSeconds(1)), 1_000_000_000),
                new RateLimitPolicy(new Rate(900_000_000, Duration.ofSeconds(1)), 1L << 40),
                null,
                null,
                Action.CLOSE);
        messages = rules.newMessageBucket();
        bytes = rules.newByteBucket();
        subjects = new KeyedBuckets(1_000_000_000, 1_000_000_000, Duration.ofSeconds(1));
        if (!utf8Heap() || !utf8Direct()) {
            throw new IllegalStateException("the benchmark's text is not UTF-8");
        }
    }

    @Benchmark
    public boolean utf8Heap() {
        utf8.reset();
        return utf8.feed(heap) && utf8.atCharBoundary();
    }

    @Benchmark
    public boolean utf8Direct() {
        utf8.reset();
        return utf8.feed(direct) && utf8.atCharBoundary();
    }

    @Benchmark
    public boolean messageAndByteBuckets() {
        return messages.tryConsume(1) && bytes.tryConsume(size);
    }

    @Benchmark
    public boolean subjectBucket() {
        return subjects.tryTake("alice", 1);
    }
}
