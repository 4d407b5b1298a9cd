package io.wsguard.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.noop.NoopCounter;
import io.wsguard.check.Reason;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * One route's meters, built once by {@link Metrics#route(String)} and kept by the caller.
 *
 * <p>Thread-safe. Messages and bytes are not counted here as they are relayed: each connection
 * counts its own ({@link Traffic}), and the route's counters add up, at scrape time, what closed
 * connections relayed and what open ones have relayed so far. A shared counter updated for every
 * message by the two threads relaying a connection's two directions cost about 6% of the proxy's
 * CPU in the 64-byte wss relay profile (JFR), mostly cache-line traffic between the cores. Handshake
 * and blocked counters are created on first use of each outcome or reason and then read from an
 * array indexed by the {@link Reason}'s ordinal.
 */
public final class RouteMetrics {

    /** The {@code outcome} of a handshake that was upgraded. */
    public static final String ACCEPTED = "accepted";

    private static final Reason[] REASONS = Reason.values();
    private static final int MESSAGES_IN = 0;
    private static final int MESSAGES_OUT = 1;
    private static final int BYTES_IN = 2;
    private static final int BYTES_OUT = 3;

    private final MeterRegistry registry;
    private final String route;
    private final AtomicLong active = new AtomicLong();
    // Guarded by itself: a connection moves from open to closed atomically for a scrape, so the
    // counters never go down.
    private final Set<Traffic> open = new HashSet<>();
    private final long[] closed = new long[4];
    private final LongAdder discardedIn = new LongAdder();
    private final LongAdder discardedOut = new LongAdder();
    private final Counter accepted;
    private final AtomicReferenceArray<Counter> refused = new AtomicReferenceArray<>(REASONS.length);
    private final AtomicReferenceArray<Counter> blocked = new AtomicReferenceArray<>(REASONS.length);
    private final AtomicReferenceArray<Counter> modified = new AtomicReferenceArray<>(REASONS.length);

    RouteMetrics(MeterRegistry registry, String route) {
        this.registry = registry;
        this.route = route;
        if (Metrics.NO_ROUTE.equals(route)) {
            // Only handshakes and blocks happen without a route: registering zero-valued
            // connection and message series for "-" would only clutter every scrape.
            accepted = noop("wsguard.handshakes");
            return;
        }
        // The gauge reads this object's AtomicLong; Micrometer holds it weakly, Metrics' map strongly.
        Gauge.builder("wsguard.connections.active", active, AtomicLong::get)
                .description("Open client connections")
                .tag("route", route)
                .register(registry);
        traffic("wsguard.messages", "Messages relayed", "inbound", MESSAGES_IN);
        traffic("wsguard.messages", "Messages relayed", "outbound", MESSAGES_OUT);
        traffic("wsguard.bytes", "Message payload bytes relayed", "inbound", BYTES_IN);
        traffic("wsguard.bytes", "Message payload bytes relayed", "outbound", BYTES_OUT);
        direction(
                "wsguard.frames.discarded",
                "Data frames read while their connection was closing, relayed nowhere",
                "inbound",
                discardedIn);
        direction(
                "wsguard.frames.discarded",
                "Data frames read while their connection was closing, relayed nowhere",
                "outbound",
                discardedOut);
        accepted = handshakeCounter(ACCEPTED);
    }

    /** The {@code route} label: the route's name, or {@link Metrics#NO_ROUTE}. */
    public String route() {
        return route;
    }

    /** A client connection was upgraded and is now relaying. */
    public void connectionOpened() {
        active.incrementAndGet();
    }

    /** A connection counted by {@link #connectionOpened()} has closed, for whatever reason. */
    public void connectionClosed() {
        active.decrementAndGet();
    }

    /** The number of open connections, as the gauge reports it. */
    public long activeConnections() {
        return active.get();
    }

    /** Counts what {@code connection} relays, from now until {@link #untrack}. */
    public void track(Traffic connection) {
        synchronized (open) {
            open.add(connection);
        }
    }

    /** {@code connection} has closed: what it relayed stays in the route's totals. */
    public void untrack(Traffic connection) {
        synchronized (open) {
            if (open.remove(connection)) {
                closed[MESSAGES_IN] += connection.messagesIn();
                closed[MESSAGES_OUT] += connection.messagesOut();
                closed[BYTES_IN] += connection.bytesIn();
                closed[BYTES_OUT] += connection.bytesOut();
            }
        }
    }

    /** Messages or bytes relayed on this route, one of the {@code MESSAGES_}/{@code BYTES_} indexes. */
    long relayed(int which) {
        synchronized (open) {
            long total = closed[which];
            for (Traffic connection : open) {
                total += switch (which) {
                    case MESSAGES_IN -> connection.messagesIn();
                    case MESSAGES_OUT -> connection.messagesOut();
                    case BYTES_IN -> connection.bytesIn();
                    default -> connection.bytesOut();
                };
            }
            return total;
        }
    }

    /** A handshake on this route was upgraded. */
    public void handshakeAccepted() {
        accepted.increment();
    }

    /** A handshake on this route was refused for {@code reason}. */
    public void handshakeRefused(Reason reason) {
        Counter counter = refused.get(slot(reason));
        if (counter == null) {
            counter = cache(refused, reason, handshakeCounter(reason.code()));
        }
        counter.increment();
    }

    /**
     * A handshake ended with {@code outcome}: {@link #ACCEPTED} or a {@link Reason#code()} such as
     * {@code no_route} or {@code upstream_unavailable}.
     *
     * @throws IllegalArgumentException for any other string: labels must not grow without bound
     */
    public void handshake(String outcome) {
        if (ACCEPTED.equals(outcome)) {
            handshakeAccepted();
        } else {
            handshakeRefused(reasonOf(outcome));
        }
    }

    /**
     * {@code count} messages or handshakes were blocked (or, in monitor mode, would have been) for
     * {@code reason}: the same count the audit line carries (README, Audit log).
     */
    public void blocked(Reason reason, long count) {
        reasonCounter(blocked, reason, "wsguard.blocked", "Handshakes and messages blocked, by reason")
                .increment((double) count);
    }

    /** A data frame was read while its connection was closing and relayed nowhere. */
    public void discarded(boolean inbound) {
        (inbound ? discardedIn : discardedOut).increment();
    }

    /**
     * A message was rewritten before it went on (sanitized), or an upgrade request (its query lost
     * parameters the target fixes): the count of {@code event: modified} audit lines.
     */
    public void modified(Reason reason) {
        reasonCounter(
                        modified,
                        reason,
                        "wsguard.modified",
                        "Messages and upgrade requests rewritten before they went on, by reason")
                .increment();
    }

    private void traffic(String name, String description, String direction, int which) {
        FunctionCounter.builder(name, this, metrics -> metrics.relayed(which))
                .description(description)
                .tag("route", route)
                .tag("direction", direction)
                .register(registry);
    }

    private void direction(String name, String description, String direction, LongAdder adder) {
        FunctionCounter.builder(name, adder, LongAdder::sum)
                .description(description)
                .tag("route", route)
                .tag("direction", direction)
                .register(registry);
    }

    private Counter noop(String name) {
        return new NoopCounter(new Meter.Id(name, Tags.of("route", route), null, null, Meter.Type.COUNTER));
    }

    private Counter handshakeCounter(String outcome) {
        return Counter.builder("wsguard.handshakes")
                .description("WebSocket handshakes, by outcome")
                .tag("route", route)
                .tag("outcome", outcome)
                .register(registry);
    }

    /**
     * The counter {@code name{route,reason}}, registered on first use and cached by reason: a flood of blocked messages
     * must not allocate per message.
     */
    private Counter reasonCounter(AtomicReferenceArray<Counter> cache, Reason reason, String name, String description) {
        final Counter cached = cache.get(slot(reason));
        if (cached != null) {
            return cached;
        }
        return cache(
                cache,
                reason,
                Counter.builder(name)
                        .description(description)
                        .tag("route", route)
                        .tag("reason", reason.code())
                        .register(registry));
    }

    /**
     * The reason's slot in a per-reason counter array. Its ordinal on purpose: the arrays are sized by
     * {@code Reason.values()} and built anew with each RouteMetrics, so the order of the constants is never
     * stored or compared anywhere; an EnumMap would not be lock-free, and this runs per refused message.
     */
    @SuppressWarnings("EnumOrdinal") // see above: an index into arrays made from values() in the same process
    private static int slot(Reason reason) {
        return reason.ordinal();
    }

    private static Counter cache(AtomicReferenceArray<Counter> cache, Reason reason, Counter created) {
        // Two threads may both register it; the registry returns the same meter for the same id.
        cache.compareAndSet(slot(reason), null, created);
        return created;
    }

    private static Reason reasonOf(String outcome) {
        if (outcome != null) {
            for (Reason reason : REASONS) {
                if (reason.code().equals(outcome)) {
                    return reason;
                }
            }
        }
        throw new IllegalArgumentException(
                "outcome: " + outcome + " (expected: accepted or a reason code such as no_route)");
    }
}
