package io.wsguard.metrics;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What counting one relayed message costs the relay (ProxySession.Side.countMessage), before and after
 * its size went into the message-size histogram, against recording into a shared Micrometer
 * DistributionSummary with the same buckets (the alternative not taken). Sizes cycle through 1,024
 * random values from 1 B to 1 MiB, so the bucket is not the same every call.
 *
 * <p>{@code count} and {@code countAndBucket} repeat countMessage's code on a connection's own array,
 * as the relay does; the {@code shared*} ones record into one summary, from one thread and from two at
 * once (a connection's two directions, or two connections of a route).
 */
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class MessageSizeBench {

    private static final VarHandle COUNT = MethodHandles.arrayElementVarHandle(long[].class);
    private static final int SIZES = 1024;

    /** One connection's direction: its counts and the sizes it relays. */
    @State(Scope.Thread)
    public static class Connection {
        final long[] counts = new long[2 + MessageSizes.BUCKETS];
        final long[] sizes = new long[SIZES];
        int next;

        @Setup
        public void setUp() {
            final Random random = new Random(17);
            for (int i = 0; i < SIZES; i++) {
                // Log-uniform: as many 10-byte messages as 100 KiB ones.
                sizes[i] = (long) Math.pow(2, random.nextDouble() * 20);
            }
        }

        long nextSize() {
            final long size = sizes[next];
            next = (next + 1) & (SIZES - 1);
            return size;
        }
    }

    /** A route's shared summary, as Micrometer would keep it. */
    @State(Scope.Benchmark)
    public static class Shared {
        PrometheusMeterRegistry registry;
        DistributionSummary summary;

        @Setup(Level.Trial)
        public void setUp() {
            registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            final double[] bounds = new double[MessageSizes.BUCKETS - 1];
            System.arraycopy(MessageSizes.UPPER_BOUNDS, 0, bounds, 0, bounds.length);
            summary = DistributionSummary.builder("wsguard.message.size.shared")
                    .baseUnit("bytes")
                    .serviceLevelObjectives(bounds)
                    .register(registry);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            registry.close();
        }
    }

    /** Before: messages and bytes only. */
    @Benchmark
    public long count(Connection c) {
        final long size = c.nextSize();
        COUNT.setOpaque(c.counts, 0, c.counts[0] + 1);
        COUNT.setOpaque(c.counts, 1, c.counts[1] + size);
        return c.counts[0];
    }

    /** After: messages, bytes and the size's bucket, as ProxySession.Side.countMessage does now. */
    @Benchmark
    public long countAndBucket(Connection c) {
        final long size = c.nextSize();
        COUNT.setOpaque(c.counts, 0, c.counts[0] + 1);
        COUNT.setOpaque(c.counts, 1, c.counts[1] + size);
        final int bucket = 2 + MessageSizes.bucket(size);
        COUNT.setOpaque(c.counts, bucket, c.counts[bucket] + 1);
        return c.counts[0];
    }

    /** The alternative: a shared summary, one thread recording. */
    @Benchmark
    public void sharedSummary(Connection c, Shared shared) {
        shared.summary.record((double) c.nextSize());
    }

    /** The alternative with two threads recording at once, as two relaying threads would. */
    @Benchmark
    @Threads(2)
    public void sharedSummaryTwoThreads(Connection c, Shared shared) {
        shared.summary.record((double) c.nextSize());
    }
}
