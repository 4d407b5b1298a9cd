package io.wsguard.audit;

import static java.util.Objects.requireNonNull;

import io.wsguard.check.Reason;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.Secret;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The audit log (SPEC §5): what the proxy calls for every block, change and would-be block.
 *
 * <p>{@link #record} is thread-safe and non-blocking: it runs on Jetty's network threads, does no
 * I/O, no formatting, takes no lock and never throws. It only counts the event into its coalescing
 * window. One daemon thread, {@code wsguard-audit}, closes windows, formats lines, chains their
 * macs and writes them.
 *
 * <p><b>Coalescing.</b> Events with the same key share a window: the key is (conn, reason, event)
 * when there is a connection, else (client, route, reason, event), so a flood of refused
 * handshakes from one address is one line per window. The first event opens the window and gives
 * the line its fields; when the window ends (1 s by default) the writer writes the line with
 * {@code count} = the number of events in it; a later event opens a new window. Counts are exact:
 * an event is either added to a window before the writer closes it, or opens a new one.
 *
 * <p><b>Bounded memory.</b> At most {@code maxOpenKeys} windows wait for the writer. Past that, an
 * event is counted into an overflow window per (event, reason, route) — at most 1,000 of those,
 * then per (event, reason) — whose line has {@code conn} and {@code client} null and detail
 * {@value #OVERFLOW_DETAIL}. A window the writer has not reached yet keeps counting, so if the
 * writer falls behind lines cover more than a window each, but nothing queues without bound and
 * the counts still add up to every event.
 *
 * <p>Sink failures (disk full) never stop the writer: they are logged at most once a minute and
 * the lost lines counted in {@link #linesFailed()}.
 */
public final class AuditLog implements AutoCloseable {

    static final String OVERFLOW_DETAIL = "coalesced: audit writer saturated";
    static final Duration DEFAULT_WINDOW = Duration.ofSeconds(1);
    static final int DEFAULT_MAX_OPEN_KEYS = 10_000;
    private static final int MAX_OVERFLOW_KEYS = 1_000;
    /** The longest the writer sleeps with nothing due, so that a new window is never missed by much. */
    private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long WARN_INTERVAL_NANOS = TimeUnit.MINUTES.toNanos(1);
    private static final Logger LOG = LoggerFactory.getLogger(AuditLog.class);

    private final LineSink sink;
    private final Clock clock;
    private final long windowMillis;
    private final int maxOpenKeys;
    private final int sampleBytes;
    private final MacChain chain; // null without an integrity key
    /** The chain's last line as far as the sink has flushed it; what an operator anchors elsewhere. */
    private volatile MacChain.Head head;
    private MacChain.Head sealedHead; // writer thread only: sealed, maybe not flushed yet

    private final ConcurrentHashMap<Key, Window> open = new ConcurrentHashMap<>();
    /** Windows in the order they opened, which is the order they end: all have the same length. */
    private final Queue<Window> pending = new ConcurrentLinkedQueue<>();
    private final AtomicInteger openKeys = new AtomicInteger();
    private final AtomicInteger overflowKeys = new AtomicInteger();
    private final Queue<CompletableFuture<Void>> flushRequests = new ConcurrentLinkedQueue<>();
    private final AtomicLong linesWritten = new AtomicLong();
    private final AtomicLong linesFailed = new AtomicLong();
    private final Thread writer;
    private volatile boolean closed;
    private long lastWarnNanos = System.nanoTime() - WARN_INTERVAL_NANOS; // writer thread only

    AuditLog(LineSink sink, Clock clock, Duration window, int maxOpenKeys, int sampleBytes, byte[] integrityKey) {
        this.sink = requireNonNull(sink, "sink");
        this.clock = requireNonNull(clock, "clock");
        if (window.isNegative() || window.isZero()) {
            throw new IllegalArgumentException("window: " + window + " (expected: > 0)");
        }
        if (maxOpenKeys <= 0) {
            throw new IllegalArgumentException("maxOpenKeys: " + maxOpenKeys + " (expected: > 0)");
        }
        this.windowMillis = window.toMillis();
        this.maxOpenKeys = maxOpenKeys;
        this.sampleBytes = Math.max(0, sampleBytes);
        this.chain = integrityKey == null ? null : new MacChain(integrityKey, sink.lastLine());
        this.head = chain == null ? null : chain.head();
        this.sealedHead = head;
        this.writer = new Thread(this::runWriter, "wsguard-audit");
        writer.setDaemon(true);
        writer.start();
    }

    /** The log {@code policy} describes, with 1-second windows. Fails if the file cannot be opened. */
    public static AuditLog from(AuditPolicy policy, Clock clock) throws IOException {
        return from(policy, clock, DEFAULT_WINDOW);
    }

    /** As {@link #from(AuditPolicy, Clock)}, with another window length (tests). */
    public static AuditLog from(AuditPolicy policy, Clock clock, Duration window) throws IOException {
        final LineSink sink = policy.sink() == AuditPolicy.Sink.STDOUT
                ? new StdoutAuditSink()
                : new FileAuditSink(policy.path(), policy.maxFileSize(), policy.maxFiles());
        final byte[] key = policy.integrityKey()
                                 .filter(secret -> !secret.isEmpty())
                                 .map(Secret::value)
                                 .map(value -> value.getBytes(StandardCharsets.UTF_8))
                                 .orElse(null);
        return new AuditLog(sink, clock, window, DEFAULT_MAX_OPEN_KEYS, policy.sampleBytes(), key);
    }

    /** How many bytes of a payload a line keeps ({@code audit.sampleBytes}); 0: none. */
    public int sampleBytes() {
        return sampleBytes;
    }

    /**
     * Counts {@code event} into its window. Thread-safe, non-blocking, never throws; ignored after
     * {@link #close()}. A sample is cut here to {@code sampleBytes} (dropped when that is 0), so
     * windows never hold whole payloads.
     */
    public void record(AuditEvent event) {
        if (event == null || closed) {
            return;
        }
        try {
            final long now = clock.millis();
            final Key key = Key.of(event);
            while (true) {
                final Window current = open.get(key);
                if (current != null) {
                    if (current.tryAdd()) {
                        return;
                    }
                    // Closed by the writer: replace it with a new window (below).
                }
                if (openKeys.incrementAndGet() > maxOpenKeys) {
                    openKeys.decrementAndGet();
                    recordOverflow(event, now);
                    return;
                }
                final Window fresh = new Window(key, withSample(event), now, now + windowMillis, false);
                if (current == null ? open.putIfAbsent(key, fresh) == null : open.replace(key, current, fresh)) {
                    pending.add(fresh);
                    return;
                }
                openKeys.decrementAndGet(); // lost a race with another recorder: count into its window
            }
        } catch (RuntimeException e) {
            linesFailed.incrementAndGet();
        }
    }

    private void recordOverflow(AuditEvent event, long now) {
        Key key = Key.overflow(event, event.route());
        while (true) {
            final Window current = open.get(key);
            if (current != null && current.tryAdd()) {
                return;
            }
            final boolean routed = key.route() != null;
            if (routed && overflowKeys.incrementAndGet() > MAX_OVERFLOW_KEYS) {
                // Route names come from the policy but are not trusted to be few: fall back to per-reason.
                overflowKeys.decrementAndGet();
                key = Key.overflow(event, null);
                continue;
            }
            final AuditEvent summary = new AuditEvent(
                    event.ts(), event.event(), event.stage(), event.reason(), key.route(), null, null, null,
                    null, event.action(), event.closeCode(), event.status(), OVERFLOW_DETAIL, null);
            final Window fresh = new Window(key, summary, now, now + windowMillis, routed);
            if (current == null ? open.putIfAbsent(key, fresh) == null : open.replace(key, current, fresh)) {
                pending.add(fresh);
                return;
            }
            if (routed) {
                overflowKeys.decrementAndGet();
            }
        }
    }

    private AuditEvent withSample(AuditEvent e) {
        if (e.sample() == null) {
            return e;
        }
        final String sample = sampleBytes == 0 ? null : AuditJson.truncateUtf8(e.sample(), sampleBytes);
        if (sample == e.sample()) {
            return e;
        }
        return new AuditEvent(e.ts(), e.event(), e.stage(), e.reason(), e.route(), e.client(), e.conn(),
                              e.sub(), e.origin(), e.action(), e.closeCode(), e.status(), e.detail(), sample);
    }

    /** Ends every window now and writes and flushes their lines; waits up to 10 s for the writer. */
    public void flush() {
        if (!writer.isAlive()) {
            return;
        }
        final CompletableFuture<Void> done = new CompletableFuture<>();
        flushRequests.add(done);
        LockSupport.unpark(writer);
        try {
            done.get(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
            LOG.warn("audit flush did not finish: {}", e.toString());
        }
    }

    /** Flushes, stops the writer and closes the sink. Events recorded afterwards are ignored. */
    @Override
    public void close() {
        flush();
        closed = true;
        LockSupport.unpark(writer);
        try {
            writer.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Lines written to the sink (not necessarily flushed yet). */
    public long linesWritten() {
        return linesWritten.get();
    }

    /**
     * The integrity chain's last flushed line (sequence number and mac), including one found on disk
     * at start; empty without an integrity key or before the chain's first line.
     */
    public Optional<MacChain.Head> chainHead() {
        return Optional.ofNullable(head);
    }

    /** Lines (or events) lost to sink failures; a metric. */
    public long linesFailed() {
        return linesFailed.get();
    }

    private void runWriter() {
        while (true) {
            try {
                final boolean stopping = closed;
                final List<CompletableFuture<Void>> requests = new ArrayList<>();
                for (CompletableFuture<Void> r; (r = flushRequests.poll()) != null; ) {
                    requests.add(r);
                }
                final boolean all = stopping || !requests.isEmpty();
                // A flush ends the windows open when it was asked for, not ones opened meanwhile.
                int budget = all ? pending.size() : Integer.MAX_VALUE;
                final long now = clock.millis();
                int written = 0;
                for (Window w; budget > 0 && (w = pending.peek()) != null && (all || w.end <= now); budget--) {
                    pending.poll();
                    emit(w);
                    written++;
                }
                if (written > 0 || all) {
                    flushSink(written);
                }
                requests.forEach(r -> r.complete(null));
                if (stopping) {
                    closeSink();
                    return;
                }
                final Window head = pending.peek();
                final long parkNanos = head == null
                        ? IDLE_PARK_NANOS
                        : Math.min(IDLE_PARK_NANOS, TimeUnit.MILLISECONDS.toNanos(head.end - clock.millis()));
                if (parkNanos > 0 && flushRequests.isEmpty()) {
                    LockSupport.parkNanos(this, parkNanos);
                }
            } catch (RuntimeException e) {
                // The writer must outlive any bug in one line; the line is counted as lost.
                linesFailed.incrementAndGet();
                warn("audit writer error", e);
            }
        }
    }

    private void emit(Window w) {
        final long count = w.close();
        open.remove(w.key, w);
        if (w.key.overflow()) {
            if (w.routedOverflow) {
                overflowKeys.decrementAndGet();
            }
        } else {
            openKeys.decrementAndGet();
        }
        final Instant ts = w.first.ts() != null ? w.first.ts() : Instant.ofEpochMilli(w.opened);
        String line = AuditJson.format(w.first, ts, count);
        if (chain != null) {
            line = chain.seal(line);
            sealedHead = chain.head();
        }
        try {
            sink.write(line);
            linesWritten.incrementAndGet();
        } catch (IOException | RuntimeException e) {
            linesFailed.incrementAndGet();
            warn("audit sink failed to write", e);
        }
    }

    private void flushSink(int batch) {
        try {
            sink.flush();
            head = sealedHead;
        } catch (IOException | RuntimeException e) {
            // What the failed flush held is lost; count the batch (at most: earlier lines may be safe).
            linesFailed.addAndGet(batch);
            warn("audit sink failed to flush", e);
        }
    }

    private void closeSink() {
        try {
            sink.close();
        } catch (IOException | RuntimeException e) {
            warn("audit sink failed to close", e);
        }
    }

    private void warn(String what, Exception e) {
        final long now = System.nanoTime();
        if (now - lastWarnNanos >= WARN_INTERVAL_NANOS) {
            lastWarnNanos = now;
            // The exception's message names the file, never a line's content.
            LOG.warn("{}: {} ({} lines lost so far)", what, e.toString(), linesFailed.get());
        }
    }

    /** What events coalesce on. Overflow keys never equal ordinary ones. */
    private record Key(boolean overflow, AuditEvent.Kind event, Reason reason, String conn, String client,
                       String route) {
        static Key of(AuditEvent e) {
            return e.conn() != null
                    ? new Key(false, e.event(), e.reason(), e.conn(), null, null)
                    : new Key(false, e.event(), e.reason(), null, e.client(), e.route());
        }

        static Key overflow(AuditEvent e, String route) {
            return new Key(true, e.event(), e.reason(), null, null, route);
        }
    }

    /** One line in the making: its first event and a count that the writer closes exactly once. */
    private static final class Window {
        private static final long CLOSED = Long.MIN_VALUE;

        final Key key;
        final AuditEvent first;
        final long opened;
        final long end;
        final boolean routedOverflow;
        private final AtomicLong count = new AtomicLong(1);

        Window(Key key, AuditEvent first, long opened, long end, boolean routedOverflow) {
            this.key = key;
            this.first = first;
            this.opened = opened;
            this.end = end;
            this.routedOverflow = routedOverflow;
        }

        /** Adds one event unless the writer closed the window; then the caller opens a new one. */
        boolean tryAdd() {
            // One atomic add, no CAS loop: after close() the count stays negative however many
            // late adds land on it, and those adders then open a new window.
            return count.getAndIncrement() >= 0;
        }

        /** The final count; every later {@link #tryAdd} fails. */
        long close() {
            return count.getAndSet(CLOSED);
        }
    }
}
