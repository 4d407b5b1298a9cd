package io.wsguard.audit;

import static java.util.Objects.requireNonNull;

import io.wsguard.check.Reason;
import io.wsguard.check.Stage;
import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.Rate;
import io.wsguard.policy.Secret;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
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
 * The audit log (README, Audit log): what the proxy calls for every block, change and would-be block.
 *
 * <p>{@link #record} is thread-safe and non-blocking: it runs on Jetty's network threads, does no
 * I/O, no formatting, takes no lock and never throws. It only counts the event into its coalescing
 * window. One daemon thread, {@code wsguard-audit}, closes windows, formats lines, chains their
 * macs and writes them.
 *
 * <p><b>Coalescing.</b> Events with the same key share a window. The key is (event, stage, reason,
 * route, client, sub) when the event has a client, whatever its connection: one address opening
 * thousands of connections that each send one denied message is one line per window, as a flood of
 * refused handshakes is. Events without a client (config) key on their connection, if any. The
 * first event opens the window and gives the line its fields, except {@code conn}, which is null
 * when the window's events came from more than one connection; when the window ends (1 s by
 * default) the writer writes the line with {@code count} = the number of events in it; a later
 * event opens a new window. Counts are exact: an event is either added to a window before the
 * writer closes it, or opens a new one.
 *
 * <p><b>Line budget per client.</b> Each client address may have {@code linesPerClient} lines per
 * period (60 a minute by default), counted by the writer from the client's first line. Windows
 * that end past the budget are not written: their counts are summed into one line per client,
 * written when the period ends (or at {@link #flush()}), whose {@code count} is their sum and whose
 * {@code covers} splits it by event, stage, reason and route (see {@link Summary}). At most
 * {@value #MAX_BUDGET_CLIENTS} clients have a budget at once; windows of further clients are summed
 * into one line per period with {@code client} null and detail naming the cap. Lines without a
 * client (config, overflow) have no budget.
 *
 * <p><b>Bounded memory.</b> At most {@code maxOpenKeys} windows wait for the writer. Past that, an
 * event is counted into an overflow window per (event, stage, reason, route) — at most 1,000 of
 * those, then per (event, stage, reason) — whose line has {@code conn} and {@code client} null and
 * detail {@value #OVERFLOW_DETAIL}. A window the writer has not reached yet keeps counting, so if
 * the writer falls behind lines cover more than a window each, but nothing queues without bound and
 * the counts still add up to every event. Budgets are bounded by {@value #MAX_BUDGET_CLIENTS}
 * clients and the breakdowns of summed lines by {@value #MAX_COVERS_PER_LINE} entries a line and
 * {@value #MAX_COVERS} in all; past those, events are counted in the entry with null fields.
 *
 * <p><b>Connection lines.</b> {@link #recordConnection} queues one {@code connection} line per closed
 * connection ({@code audit.connections: true}). They go through the same sink and the same integrity
 * chain, but never coalesce and have no line budget: each line is one connection's record (its
 * counts and end cannot be summed into another's), and the connections a client can open are
 * already bounded by the handshake's checks (rates, caps, {@code proxy.maxConnections}), where
 * refused ones are coalesced blocked lines. The queue holds at most {@value #MAX_QUEUED_CONNECTIONS}
 * lines the writer has not reached; past that a line is dropped and counted
 * ({@link #connectionsDropped()}, a metric), and the writer reports the count in a line of its own
 * (reason {@code connections_dropped}) once it catches up: nothing is lost without a trace.
 *
 * <p>Sink failures (disk full) never stop the writer: they are logged at most once a minute and
 * the lost lines counted in {@link #linesFailed()}.
 */
public final class AuditLog implements AutoCloseable {

    static final String OVERFLOW_DETAIL = "coalesced: audit writer saturated";
    static final Duration DEFAULT_WINDOW = Duration.ofSeconds(1);
    static final int DEFAULT_MAX_OPEN_KEYS = 10_000;
    private static final int MAX_OVERFLOW_KEYS = 1_000;
    /** Clients with a line budget at once: about 200 bytes each, so some 20 MiB at most. */
    static final int MAX_BUDGET_CLIENTS = 100_000;
    /** Entries of one summed line's {@code covers}: more than a client reaches on real routes. */
    static final int MAX_COVERS_PER_LINE = 32;
    /** Entries of {@code covers} kept in all, across the summed lines not written yet. */
    static final int MAX_COVERS = 100_000;
    /** Connection lines waiting for the writer, at most: some 300 bytes each, so about 20 MiB. */
    static final int MAX_QUEUED_CONNECTIONS = 65_536;
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
    private final long linesPerClient;
    private final long budgetMillis;
    private final String budgetDetail;
    private final int maxBudgetClients;
    private final String clientCapDetail;
    /** Budgets in the order they began, which is the order they end: all have the same length. Writer only. */
    private final LinkedHashMap<String, Budget> budgets = new LinkedHashMap<>();

    private Summary pastClientCap; // writer thread only
    private int coverEntries; // writer thread only
    private final AtomicLong eventsOverBudget = new AtomicLong();
    private final AtomicLong eventsPastClientCap = new AtomicLong();
    /** The chain's last line as far as the sink has flushed it; what an operator anchors elsewhere. */
    private volatile MacChain.Head head;

    private MacChain.Head sealedHead; // writer thread only: sealed, maybe not flushed yet

    private final ConcurrentHashMap<Key, Window> open = new ConcurrentHashMap<>();
    /** Windows in the order they opened, which is the order they end: all have the same length. */
    private final Queue<Window> pending = new ConcurrentLinkedQueue<>();

    private final AtomicInteger openKeys = new AtomicInteger();
    private final AtomicInteger overflowKeys = new AtomicInteger();
    private final Queue<CompletableFuture<Void>> flushRequests = new ConcurrentLinkedQueue<>();
    /** Connection lines not written yet, in the order their connections closed; bounded by maxQueuedConnections. */
    private final Queue<ConnectionEvent> connections = new ConcurrentLinkedQueue<>();

    private final AtomicInteger queuedConnections = new AtomicInteger();
    private final int maxQueuedConnections;
    private final AtomicLong connectionsDropped = new AtomicLong();
    private long connectionsDroppedReported; // writer thread only
    private final AtomicLong linesWritten = new AtomicLong();
    private final AtomicLong linesFailed = new AtomicLong();
    private final Thread writer;
    private volatile boolean closed;
    private long lastWarnNanos = System.nanoTime() - WARN_INTERVAL_NANOS; // writer thread only
    private long lastDropWarnNanos = System.nanoTime() - WARN_INTERVAL_NANOS; // writer thread only

    AuditLog(LineSink sink, Clock clock, Duration window, int maxOpenKeys, int sampleBytes, byte[] integrityKey) {
        this(
                sink,
                clock,
                window,
                maxOpenKeys,
                sampleBytes,
                integrityKey,
                AuditPolicy.DEFAULT_LINES_PER_CLIENT,
                MAX_BUDGET_CLIENTS);
    }

    AuditLog(
            LineSink sink,
            Clock clock,
            Duration window,
            int maxOpenKeys,
            int sampleBytes,
            byte[] integrityKey,
            Rate linesPerClient,
            int maxBudgetClients) {
        this(
                sink,
                clock,
                window,
                maxOpenKeys,
                sampleBytes,
                integrityKey,
                linesPerClient,
                maxBudgetClients,
                MAX_QUEUED_CONNECTIONS);
    }

    AuditLog(
            LineSink sink,
            Clock clock,
            Duration window,
            int maxOpenKeys,
            int sampleBytes,
            byte[] integrityKey,
            Rate linesPerClient,
            int maxBudgetClients,
            int maxQueuedConnections) {
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
        this.linesPerClient = linesPerClient.amount();
        this.budgetMillis = linesPerClient.per().toMillis();
        this.budgetDetail =
                "over audit.linesPerClient (" + linesPerClient + "): the rest of the client's events, summed";
        this.maxBudgetClients = maxBudgetClients;
        this.maxQueuedConnections = maxQueuedConnections;
        this.clientCapDetail = "over " + maxBudgetClients + " clients with an audit budget: the rest of their events,"
                + " summed without client";
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
        final LineSink sink =
                switch (policy.sink()) {
                    case STDOUT -> new StdoutAuditSink();
                    case SYSLOG -> new SyslogAuditSink(policy.syslog().orElseThrow());
                    case FILE -> new FileAuditSink(policy.path(), policy.maxFileSize(), policy.maxFiles());
                };
        final byte[] key = policy.integrityKey()
                .filter(secret -> !secret.isEmpty())
                .map(Secret::value)
                .map(value -> value.getBytes(StandardCharsets.UTF_8))
                .orElse(null);
        return new AuditLog(
                sink,
                clock,
                window,
                DEFAULT_MAX_OPEN_KEYS,
                policy.sampleBytes(),
                key,
                policy.linesPerClient(),
                MAX_BUDGET_CLIENTS);
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
                    if (current.tryAdd(Objects.equals(event.conn(), current.first.conn()))) {
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

    /**
     * Queues {@code event}'s line, written as it is (no coalescing, no line budget). Thread-safe,
     * non-blocking, never throws; ignored after {@link #close()}. Past
     * {@value #MAX_QUEUED_CONNECTIONS} lines waiting for the writer it is dropped and counted.
     */
    public void recordConnection(ConnectionEvent event) {
        if (event == null || closed) {
            return;
        }
        if (queuedConnections.incrementAndGet() > maxQueuedConnections) {
            queuedConnections.decrementAndGet();
            connectionsDropped.incrementAndGet();
            return;
        }
        connections.add(event);
    }

    /** Connection lines dropped because the writer's queue was full (each reported in a line later); a metric. */
    public long connectionsDropped() {
        return connectionsDropped.get();
    }

    private void recordOverflow(AuditEvent event, long now) {
        Key key = Key.overflow(event, event.route());
        while (true) {
            final Window current = open.get(key);
            if (current != null && current.tryAdd(true)) { // an overflow line has no conn to keep
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
                    event.ts(),
                    event.event(),
                    event.stage(),
                    event.reason(),
                    key.route(),
                    null,
                    null,
                    null,
                    null,
                    event.action(),
                    event.closeCode(),
                    event.status(),
                    OVERFLOW_DETAIL,
                    null);
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
        if (e.sample().equals(sample)) {
            return e;
        }
        return new AuditEvent(
                e.ts(),
                e.event(),
                e.stage(),
                e.reason(),
                e.route(),
                e.client(),
                e.conn(),
                e.sub(),
                e.origin(),
                e.action(),
                e.closeCode(),
                e.status(),
                e.detail(),
                sample);
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

    /**
     * Lines the sink took and then lost for {@code reason} ({@code buffer_full}, {@code oversized}:
     * the syslog sink's), ever; a metric.
     */
    public long linesDropped(String reason) {
        return sink.dropped(reason);
    }

    /** Lines (or events) lost to sink failures; a metric. */
    public long linesFailed() {
        return linesFailed.get();
    }

    /** Windows open or not yet written (tests wait for the writer with it). */
    int openWindows() {
        return open.size();
    }

    /** Events summed into a client's over-budget line (written or not yet); a metric. */
    public long eventsOverBudget() {
        return eventsOverBudget.get();
    }

    /** Events summed without their client because too many clients had a budget; a metric. */
    public long eventsPastClientCap() {
        return eventsPastClientCap.get();
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
                // A sink that lost lines and delivers again: say so before anything else.
                int written = reportDrops(now);
                // Periods that ended first, so that a window ending now counts against the next one.
                written += endBudgets(now);
                for (Window w; budget > 0 && (w = pending.peek()) != null && (all || w.end <= now); budget--) {
                    pending.poll();
                    written += emit(w, now);
                }
                written += writeConnections(now);
                if (all) {
                    // A flush puts every event recorded so far on disk: the summed lines too. The
                    // budgets stay spent, so what follows in their period is summed again.
                    written += writeSummaries();
                }
                if (written > 0 || all) {
                    flushSink(written);
                }
                requests.forEach(r -> r.complete(null));
                if (stopping) {
                    closeSink();
                    return;
                }
                long due = IDLE_PARK_NANOS;
                final Window head = pending.peek();
                if (head != null) {
                    due = Math.min(due, TimeUnit.MILLISECONDS.toNanos(head.end - clock.millis()));
                }
                final Budget oldest =
                        budgets.isEmpty() ? null : budgets.values().iterator().next();
                if (oldest != null) {
                    due = Math.min(due, TimeUnit.MILLISECONDS.toNanos(oldest.end - clock.millis()));
                }
                if (due > 0 && flushRequests.isEmpty()) {
                    LockSupport.parkNanos(this, due);
                }
            } catch (RuntimeException e) {
                // The writer must outlive any bug in one line; the line is counted as lost.
                linesFailed.incrementAndGet();
                warn("audit writer error", e);
            }
        }
    }

    /**
     * Writes the connection lines queued so far, then, if some were dropped since the last report, one
     * line that counts them; the lines written.
     */
    private int writeConnections(long now) {
        int written = 0;
        for (ConnectionEvent e; (e = connections.poll()) != null; ) {
            queuedConnections.decrementAndGet();
            written += write(AuditJson.formatConnection(e));
        }
        final long dropped = connectionsDropped.get();
        if (dropped > connectionsDroppedReported) {
            final long count = dropped - connectionsDroppedReported;
            connectionsDroppedReported = dropped;
            written += write(AuditJson.formatDropped(
                    Instant.ofEpochMilli(now),
                    count,
                    count + " connection line(s) dropped: more than " + maxQueuedConnections
                            + " were waiting for the audit writer"));
            final long nanos = System.nanoTime();
            if (nanos - lastDropWarnNanos >= WARN_INTERVAL_NANOS) {
                lastDropWarnNanos = nanos;
                LOG.warn(
                        "audit writer fell behind: {} connection line(s) dropped so far (counted in the log)", dropped);
            }
        }
        return written;
    }

    /** Closes {@code w} and writes its line, or sums it into its client's over-budget line; the lines written. */
    private int emit(Window w, long now) {
        final long state = w.close();
        open.remove(w.key, w);
        if (w.key.overflow()) {
            if (w.routedOverflow) {
                overflowKeys.decrementAndGet();
            }
        } else {
            openKeys.decrementAndGet();
        }
        final long count = Window.count(state);
        AuditEvent e = w.first;
        if (Window.manyConns(state) && e.conn() != null) {
            e = new AuditEvent(
                    e.ts(),
                    e.event(),
                    e.stage(),
                    e.reason(),
                    e.route(),
                    e.client(),
                    null,
                    e.sub(),
                    e.origin(),
                    e.action(),
                    e.closeCode(),
                    e.status(),
                    e.detail(),
                    e.sample());
        }
        final Instant ts = e.ts() != null ? e.ts() : Instant.ofEpochMilli(w.opened);
        final String client = e.client();
        if (client != null && !w.key.overflow()) {
            Budget budget = budgets.get(client);
            if (budget == null) {
                if (budgets.size() >= maxBudgetClients) {
                    if (pastClientCap == null) {
                        pastClientCap = new Summary(e, ts, now + budgetMillis, clientCapDetail, true);
                    }
                    sum(pastClientCap, e, count);
                    eventsPastClientCap.addAndGet(count);
                    return 0;
                }
                budget = new Budget(now + budgetMillis);
                budgets.put(client, budget);
            }
            if (budget.lines >= linesPerClient) {
                if (budget.over == null) {
                    budget.over = new Summary(e, ts, budget.end, budgetDetail, false);
                }
                sum(budget.over, e, count);
                eventsOverBudget.addAndGet(count);
                return 0;
            }
            budget.lines++;
        }
        return write(AuditJson.format(e, ts, count, null));
    }

    private void sum(Summary summary, AuditEvent e, long count) {
        final Cover cover = new Cover(e.event(), e.stage(), e.reason(), e.route());
        final long[] known = summary.covers.get(cover);
        if (known != null) {
            known[0] += count;
        } else if (summary.covers.size() < MAX_COVERS_PER_LINE && coverEntries < MAX_COVERS) {
            summary.covers.put(cover, new long[] {count});
            coverEntries++;
        } else {
            summary.uncovered += count;
        }
        summary.add(e, count);
    }

    /** Ends the budget periods that are over, writing their summed lines; the lines written. */
    private int endBudgets(long now) {
        int written = 0;
        for (Iterator<Budget> it = budgets.values().iterator(); it.hasNext(); ) {
            final Budget budget = it.next();
            if (budget.end > now) {
                break;
            }
            it.remove();
            if (budget.over != null) {
                written += writeSummary(budget.over);
            }
        }
        if (pastClientCap != null && pastClientCap.end <= now) {
            written += writeSummary(pastClientCap);
            pastClientCap = null;
        }
        return written;
    }

    /** Writes every summed line now ({@link #flush}); the budgets stay as spent as they were. */
    private int writeSummaries() {
        int written = 0;
        for (Budget budget : budgets.values()) {
            if (budget.over != null) {
                written += writeSummary(budget.over);
                budget.over = null;
            }
        }
        if (pastClientCap != null) {
            written += writeSummary(pastClientCap);
            pastClientCap = null;
        }
        return written;
    }

    private int writeSummary(Summary summary) {
        final List<AuditJson.Cover> covers = new ArrayList<>(summary.covers.size() + 1);
        summary.covers.forEach((c, n) -> covers.add(new AuditJson.Cover(
                c.event().code(), c.stage().code(), c.reason().code(), c.route(), n[0])));
        if (summary.uncovered > 0) {
            covers.add(new AuditJson.Cover(null, null, null, null, summary.uncovered));
        }
        coverEntries -= summary.covers.size();
        return write(AuditJson.format(summary.line(), summary.ts, summary.count, covers));
    }

    /**
     * Writes the {@code audit_dropped} line of a run of lines the sink lost, if it has one to report.
     * Its {@code count} is the number of lines lost; with an integrity key their sequence numbers are
     * missing from the chain, the detail names them, and the chain goes on from the last one's mac.
     */
    private int reportDrops(long now) {
        final DropReport report = sink.takeDropReport();
        if (report == null) {
            return 0;
        }
        final AuditEvent event = AuditEvent.builder(AuditEvent.Kind.AUDIT, Reason.AUDIT_DROPPED)
                .detail(report.detail())
                .build();
        LOG.warn("audit: {}", report.detail());
        return write(AuditJson.format(event, Instant.ofEpochMilli(now), report.lines(), null));
    }

    /** Seals and writes one line; 1 if it was handed to the sink, else 0 (counted as failed). */
    private int write(String json) {
        String line = json;
        if (chain != null) {
            line = chain.seal(line);
            sealedHead = chain.head();
        }
        try {
            sink.write(line);
            linesWritten.incrementAndGet();
            return 1;
        } catch (IOException | RuntimeException e) {
            linesFailed.incrementAndGet();
            warn("audit sink failed to write", e);
            return 0;
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

    /**
     * What events coalesce on. Overflow keys never equal ordinary ones. With a client the connection
     * is no part of the key: one address opening a connection per message must not get a line per
     * message. Without one (config events) a connection, if any, keeps its own lines.
     */
    private record Key(
            boolean overflow,
            AuditEvent.Kind event,
            Stage stage,
            Reason reason,
            String route,
            String client,
            String sub,
            String conn) {
        static Key of(AuditEvent e) {
            return e.client() != null
                    ? new Key(false, e.event(), e.stage(), e.reason(), e.route(), e.client(), e.sub(), null)
                    : new Key(false, e.event(), e.stage(), e.reason(), e.route(), null, null, e.conn());
        }

        static Key overflow(AuditEvent e, String route) {
            return new Key(true, e.event(), e.stage(), e.reason(), route, null, null, null);
        }
    }

    /** One line in the making: its first event and a count that the writer closes exactly once. */
    private static final class Window {
        /** The state once closed: negative however many late adds land on it. */
        private static final long CLOSED = Long.MIN_VALUE;
        /** Set in the state once an event from another connection than the first's was added. */
        private static final long MANY_CONNS = 1L << 62;

        final Key key;
        final AuditEvent first;
        final long opened;
        final long end;
        final boolean routedOverflow;
        /** The count, with {@link #MANY_CONNS}: one word, so that the writer reads both at once when it closes. */
        private final AtomicLong state = new AtomicLong(1);

        Window(Key key, AuditEvent first, long opened, long end, boolean routedOverflow) {
            this.key = key;
            this.first = first;
            this.opened = opened;
            this.end = end;
            this.routedOverflow = routedOverflow;
        }

        /**
         * Adds one event unless the writer closed the window; then the caller opens a new one.
         * {@code sameConn}: the event came from the first event's connection.
         */
        boolean tryAdd(boolean sameConn) {
            if (!sameConn) {
                // Sets the flag with the add, so that a closed window either counted both or neither.
                // A CAS loop only until the flag is set: a few times per window at most.
                for (long v = state.get(); v >= 0 && (v & MANY_CONNS) == 0; v = state.get()) {
                    if (state.compareAndSet(v, (v + 1) | MANY_CONNS)) {
                        return true;
                    }
                }
            }
            // One atomic add, no CAS loop: after close() the state stays negative however many
            // late adds land on it, and those adders then open a new window.
            return state.getAndIncrement() >= 0;
        }

        /** The final state (see {@link #count} and {@link #manyConns}); every later {@link #tryAdd} fails. */
        long close() {
            return state.getAndSet(CLOSED);
        }

        static long count(long state) {
            return state & ~MANY_CONNS;
        }

        static boolean manyConns(long state) {
            return (state & MANY_CONNS) != 0;
        }
    }

    /** A client's line budget for one period; the writer's alone. */
    private static final class Budget {
        final long end;
        long lines;
        /** The events of windows past the budget, or null while it lasts (or since a flush wrote them). */
        Summary over;

        Budget(long end) {
            this.end = end;
        }
    }

    /** What a summed line's {@code covers} splits its count by. */
    private record Cover(AuditEvent.Kind event, Stage stage, Reason reason, String route) {}

    /**
     * One summed line in the making: the first event summed gives its event, stage, reason, route and
     * client (null past the client cap); {@code conn}, {@code sub} and {@code origin} are kept only when
     * every event summed shares them. Action, codes and samples differ from event to event and are left
     * out; {@code covers} says what the count is made of. The writer's alone.
     */
    private static final class Summary {
        final AuditEvent first;
        final Instant ts;
        final long end;
        final String detail;
        final boolean withoutClient;
        final Map<Cover, long[]> covers = new LinkedHashMap<>();
        long uncovered;
        long count;
        private String conn;
        private String sub;
        private String origin;

        Summary(AuditEvent first, Instant ts, long end, String detail, boolean withoutClient) {
            this.first = first;
            this.ts = ts;
            this.end = end;
            this.detail = detail;
            this.withoutClient = withoutClient;
            this.conn = first.conn();
            this.sub = first.sub();
            this.origin = first.origin();
        }

        void add(AuditEvent e, long n) {
            count += n;
            conn = Objects.equals(conn, e.conn()) ? conn : null;
            sub = Objects.equals(sub, e.sub()) ? sub : null;
            origin = Objects.equals(origin, e.origin()) ? origin : null;
        }

        AuditEvent line() {
            return new AuditEvent(
                    ts,
                    first.event(),
                    first.stage(),
                    first.reason(),
                    first.route(),
                    withoutClient ? null : first.client(),
                    conn,
                    sub,
                    origin,
                    null,
                    null,
                    null,
                    detail,
                    null);
        }
    }
}
