package io.wsguard.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.noop.NoopCounter;
import io.wsguard.check.Reason;
import java.time.Duration;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
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
 * CPU in the 64-byte wss relay profile (JFR), mostly cache-line traffic between the cores. Message
 * sizes ({@link MessageSizes}) are counted the same way, per connection, for the same reason.
 * Handshake and blocked counters are created on first use of each outcome or reason and then read
 * from an array indexed by the {@link Reason}'s ordinal.
 *
 * <p>Connections, messages, bytes, discarded frames, connection lifetimes and upstream connect
 * times also carry the {@code upstream} label: the target the connection was dialled to, one of
 * the route's configured targets ({@link Upstream}).
 */
public final class RouteMetrics {

    /** The {@code outcome} of a handshake that was upgraded. */
    public static final String ACCEPTED = "accepted";

    /** The {@code outcome} of a handshake's duration when it was refused, for whatever reason. */
    public static final String REFUSED = "refused";

    /**
     * {@code wsguard_handshake_duration_seconds} and {@code wsguard_upstream_connect_duration_seconds}:
     * a local upstream upgrades in about a millisecond; the connect timeout defaults to seconds.
     */
    static final Duration[] HANDSHAKE_BUCKETS = {
        Duration.ofMillis(1),
        Duration.ofNanos(2_500_000),
        Duration.ofMillis(5),
        Duration.ofMillis(10),
        Duration.ofMillis(25),
        Duration.ofMillis(50),
        Duration.ofMillis(100),
        Duration.ofMillis(250),
        Duration.ofMillis(500),
        Duration.ofSeconds(1),
        Duration.ofMillis(2_500),
        Duration.ofSeconds(5),
        Duration.ofSeconds(10)
    };

    /** {@code wsguard_connection_lifetime_seconds}: from a second to a day. */
    static final Duration[] LIFETIME_BUCKETS = {
        Duration.ofSeconds(1),
        Duration.ofSeconds(10),
        Duration.ofMinutes(1),
        Duration.ofMinutes(5),
        Duration.ofMinutes(15),
        Duration.ofHours(1),
        Duration.ofHours(4),
        Duration.ofHours(12),
        Duration.ofHours(24)
    };

    private static final Reason[] REASONS = Reason.values();
    static final int MESSAGES_IN = 0;
    static final int MESSAGES_OUT = 1;
    static final int BYTES_IN = 2;
    static final int BYTES_OUT = 3;

    private final MeterRegistry registry;
    private final String route;
    private final ConcurrentMap<String, Upstream> upstreams = new ConcurrentHashMap<>();
    private final Counter accepted;
    private final Timer acceptedIn;
    private final Timer refusedIn;
    private final AtomicReferenceArray<Counter> refused = new AtomicReferenceArray<>(REASONS.length);
    private final AtomicReferenceArray<Counter> blocked = new AtomicReferenceArray<>(REASONS.length);
    private final AtomicReferenceArray<Counter> modified = new AtomicReferenceArray<>(REASONS.length);

    RouteMetrics(MeterRegistry registry, String route) {
        this.registry = registry;
        this.route = route;
        refusedIn = handshakeTimer(REFUSED);
        if (Metrics.NO_ROUTE.equals(route)) {
            // Only handshakes and blocks happen without a route: registering zero-valued
            // accepted series for "-" would only clutter every scrape.
            accepted = noop("wsguard.handshakes");
            acceptedIn = null;
            return;
        }
        accepted = handshakeCounter(ACCEPTED);
        acceptedIn = handshakeTimer(ACCEPTED);
    }

    /** The {@code route} label: the route's name, or {@link Metrics#NO_ROUTE}. */
    public String route() {
        return route;
    }

    /**
     * A client connection was upgraded and is now relaying: counted as open, and what it relays
     * is counted from now until {@link #connectionClosed}.
     */
    public void connectionOpened(Traffic connection) {
        // Registered once per route and path, then found in the registry's map: one lookup per connection.
        Counter.builder("wsguard.connections.opened")
                .description("Client connections opened, by the path that relays their frames: pump or session")
                .tag("route", route)
                .tag("path", connection.relayPath())
                .register(registry)
                .increment();
        final Upstream upstream = upstream(connection.upstream());
        upstream.active.incrementAndGet();
        synchronized (upstream.open) {
            upstream.open.add(connection);
        }
    }

    /**
     * A connection counted by {@link #connectionOpened} has closed, for whatever reason, after
     * {@code lifetime}: what it relayed stays in the route's totals. A second call for the same
     * connection changes nothing.
     */
    public void connectionClosed(Traffic connection, Duration lifetime) {
        final Upstream upstream = upstream(connection.upstream());
        synchronized (upstream.open) {
            if (!upstream.open.remove(connection)) {
                return;
            }
            upstream.closed[MESSAGES_IN] += connection.messagesIn();
            upstream.closed[MESSAGES_OUT] += connection.messagesOut();
            upstream.closed[BYTES_IN] += connection.bytesIn();
            upstream.closed[BYTES_OUT] += connection.bytesOut();
            for (int b = 0; b < MessageSizes.BUCKETS; b++) {
                upstream.closedSizesIn[b] += connection.messageSizes(true, b);
                upstream.closedSizesOut[b] += connection.messageSizes(false, b);
            }
        }
        upstream.active.decrementAndGet();
        upstream.lifetime.record(lifetime);
    }

    /** The number of open connections, as the gauges report them summed over upstreams. */
    public long activeConnections() {
        long total = 0;
        for (Upstream upstream : upstreams.values()) {
            total += upstream.active.get();
        }
        return total;
    }

    /** Messages or bytes relayed on this route, one of the {@code MESSAGES_}/{@code BYTES_} indexes. */
    long relayed(int which) {
        long total = 0;
        for (Upstream upstream : upstreams.values()) {
            total += upstream.relayed(which);
        }
        return total;
    }

    /**
     * The upstream {@code target} answered the upgrade {@code nanos} after it was dialled: name
     * resolution, TCP, TLS and the upgrade together.
     */
    public void upstreamConnected(String target, long nanos) {
        upstream(target).connect.record(nanos, TimeUnit.NANOSECONDS);
    }

    /**
     * A handshake on this route ended {@code nanos} after its request arrived: with the 101 when
     * {@code accepted}, else with the refusal's status.
     */
    public void handshakeTook(boolean accepted, long nanos) {
        final Timer timer = accepted ? acceptedIn : refusedIn;
        if (timer != null) {
            timer.record(nanos, TimeUnit.NANOSECONDS);
        }
    }

    /** Every upstream this route has dialled so far, for the message-size histogram's scrape. */
    Collection<Upstream> upstreams() {
        return upstreams.values();
    }

    /** The meters of one upstream target, registered on its first connection. */
    Upstream upstream(String target) {
        final String label = target == null || target.isEmpty() ? Metrics.NO_ROUTE : target;
        final Upstream known = upstreams.get(label);
        return known != null ? known : upstreams.computeIfAbsent(label, key -> new Upstream(this, key));
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

    /** A data frame of {@code connection} was read while it was closing and relayed nowhere. */
    public void discarded(Traffic connection, boolean inbound) {
        final Upstream upstream = upstream(connection.upstream());
        (inbound ? upstream.discardedIn : upstream.discardedOut).increment();
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

    private Timer handshakeTimer(String outcome) {
        return Timer.builder("wsguard.handshake.duration")
                .description("From a WebSocket upgrade request to its 101 (accepted) or its refusal (refused)")
                .tag("route", route)
                .tag("outcome", outcome)
                .serviceLevelObjectives(HANDSHAKE_BUCKETS)
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

    /**
     * One upstream target's share of the route: open connections, what closed ones relayed, their
     * lifetimes and connect times. Registered once per target the route dials; a route has a few
     * configured targets, so the {@code upstream} label stays bounded.
     */
    static final class Upstream {
        private final String target;
        private final AtomicLong active = new AtomicLong();
        // Guarded by itself: a connection moves from open to closed atomically for a scrape, so the
        // counters never go down.
        private final Set<Traffic> open = new HashSet<>();
        private final long[] closed = new long[4];
        private final long[] closedSizesIn = new long[MessageSizes.BUCKETS];
        private final long[] closedSizesOut = new long[MessageSizes.BUCKETS];
        private final LongAdder discardedIn = new LongAdder();
        private final LongAdder discardedOut = new LongAdder();
        private final Timer lifetime;
        private final Timer connect;

        Upstream(RouteMetrics owner, String target) {
            this.target = target;
            final MeterRegistry registry = owner.registry;
            final String route = owner.route;
            // The gauge reads this object's AtomicLong; Micrometer holds it weakly, the route's map strongly.
            Gauge.builder("wsguard.connections.active", active, AtomicLong::get)
                    .description("Open client connections")
                    .tag("route", route)
                    .tag("upstream", target)
                    .register(registry);
            traffic(registry, route, "wsguard.messages", "Messages relayed", "inbound", MESSAGES_IN);
            traffic(registry, route, "wsguard.messages", "Messages relayed", "outbound", MESSAGES_OUT);
            traffic(registry, route, "wsguard.bytes", "Message payload bytes relayed", "inbound", BYTES_IN);
            traffic(registry, route, "wsguard.bytes", "Message payload bytes relayed", "outbound", BYTES_OUT);
            discarded(registry, route, "inbound", discardedIn);
            discarded(registry, route, "outbound", discardedOut);
            lifetime = Timer.builder("wsguard.connection.lifetime")
                    .description("How long client connections stayed open, recorded when they close")
                    .tag("route", route)
                    .tag("upstream", target)
                    .serviceLevelObjectives(LIFETIME_BUCKETS)
                    .register(registry);
            connect = Timer.builder("wsguard.upstream.connect.duration")
                    .description("From dialling an upstream target to its 101: name resolution, TCP, TLS, upgrade")
                    .tag("route", route)
                    .tag("upstream", target)
                    .serviceLevelObjectives(HANDSHAKE_BUCKETS)
                    .register(registry);
        }

        String target() {
            return target;
        }

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

        /** The message-size bucket counts of one direction, closed and open connections together (not cumulative). */
        long[] messageSizes(boolean inbound) {
            synchronized (open) {
                final long[] counts = (inbound ? closedSizesIn : closedSizesOut).clone();
                for (Traffic connection : open) {
                    for (int b = 0; b < counts.length; b++) {
                        counts[b] += connection.messageSizes(inbound, b);
                    }
                }
                return counts;
            }
        }

        private void traffic(
                MeterRegistry registry, String route, String name, String description, String direction, int which) {
            FunctionCounter.builder(name, this, upstream -> upstream.relayed(which))
                    .description(description)
                    .tag("route", route)
                    .tag("upstream", target)
                    .tag("direction", direction)
                    .register(registry);
        }

        private void discarded(MeterRegistry registry, String route, String direction, LongAdder adder) {
            FunctionCounter.builder("wsguard.frames.discarded", adder, LongAdder::sum)
                    .description("Data frames read while their connection was closing, relayed nowhere")
                    .tag("route", route)
                    .tag("upstream", target)
                    .tag("direction", direction)
                    .register(registry);
        }
    }
}
