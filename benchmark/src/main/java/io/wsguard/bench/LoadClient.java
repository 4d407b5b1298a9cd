package io.wsguard.bench;

import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.transport.HttpClientTransportOverHTTP;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.client.ClientUpgradeRequest;
import org.eclipse.jetty.websocket.client.WebSocketClient;

/**
 * Opens WebSocket connections to one target and drives echo traffic through them.
 *
 * <p>Each connection keeps up to {@code window} messages in flight: the first {@code window} are
 * sent at start, and each returning echo releases the next send. The echo preserves order, so the
 * round-trip time of an echo is "now" minus the oldest send time in the connection's FIFO ring.
 * In paced mode ({@link #runPaced}) one thread sends at a fixed total rate instead, and the round
 * trip is measured from the time the send was <em>scheduled</em>, so a stalled target cannot hide
 * its delay by slowing the sender (coordinated omission).
 *
 * <p>Trust-all TLS: this client accepts any certificate. That is fine for a benchmark against its
 * own self-signed certificate and must never be copied into the proxy.
 */
public final class LoadClient implements AutoCloseable {

    /** Round-trip times up to 60 s, 3 significant digits, in nanoseconds. */
    private final Recorder rtts = new Recorder(60_000_000_000L, 3);

    private final LongAdder echoes = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final AtomicInteger closed = new AtomicInteger();
    private final WebSocketClient client;
    private final List<Conn> conns = new ArrayList<>();
    private final Callback writeCallback = Callback.from(() -> {}, failure -> errors.increment());
    // JSON mode (scenario g): every echo is compared with what was sent.
    private final LongAdder verified = new LongAdder();
    private final LongAdder mismatches = new LongAdder();
    private final AtomicInteger peerCloses = new AtomicInteger();
    private volatile String firstMismatch;
    private volatile String firstPeerClose;
    private String[] pool;

    private volatile boolean stopping;
    private volatile boolean closingAll;

    /** What opening the connections achieved. */
    public record OpenResult(int opened, int failed, double handshakesPerSecond, String firstFailure) {}

    /** What one measured interval achieved. */
    public record RunResult(long echoes, double seconds, Histogram histogram, long errors, long overruns) {
        /** Echo round trips per second. */
        public double rate() {
            return seconds > 0 ? echoes / seconds : 0;
        }
    }

    /** Starts the client; nothing is connected yet. */
    public LoadClient(int maxConnections) throws Exception {
        final SslContextFactory.Client tls = new SslContextFactory.Client(true);
        tls.setEndpointIdentificationAlgorithm(null);
        final ClientConnector connector = new ClientConnector();
        connector.setSslContextFactory(tls);
        connector.setConnectTimeout(Duration.ofSeconds(10));
        final HttpClient http = new HttpClient(new HttpClientTransportOverHTTP(connector));
        // Each WebSocket takes its own connection; the default cap (64 per destination) would
        // silently queue the idle benchmark's handshakes.
        http.setMaxConnectionsPerDestination(maxConnections + 16);
        http.setMaxRequestsQueuedPerDestination(maxConnections + 16);
        client = new WebSocketClient(http);
        client.setIdleTimeout(Duration.ofHours(1));
        client.setMaxBinaryMessageSize(16L << 20);
        client.setMaxTextMessageSize(16L << 20);
        client.setMaxFrameSize(16L << 20);
        client.start();
    }

    /**
     * Opens {@code count} connections, at most {@code concurrency} handshakes at a time, and gives up
     * on whatever has not opened by {@code timeout}.
     */
    public OpenResult open(URI uri, int count, int concurrency, int ringSize, int size, boolean text, Duration timeout)
            throws InterruptedException {
        warmUp(uri, timeout);
        final Semaphore slots = new Semaphore(concurrency);
        final AtomicInteger failed = new AtomicInteger();
        final String[] firstFailure = new String[1];
        final long start = System.nanoTime();
        final long deadline = start + timeout.toNanos();
        for (int i = 0; i < count; i++) {
            final long left = deadline - System.nanoTime();
            if (left <= 0 || !slots.tryAcquire(left, TimeUnit.NANOSECONDS)) {
                failed.addAndGet(count - i);
                break;
            }
            final Conn conn = new Conn(this, ringSize, size, text, i);
            final ClientUpgradeRequest request = new ClientUpgradeRequest(uri);
            request.setTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS);
            CompletableFuture<Session> connect;
            try {
                connect = client.connect(conn, request);
            } catch (Exception e) {
                connect = CompletableFuture.failedFuture(e);
            }
            // Counted through the slots and conns, so the stage itself is not kept: the callback handles both
            // outcomes, and the stage it returns would only repeat them.
            final CompletableFuture<Session> unused = connect.whenComplete((session, failure) -> {
                if (failure != null) {
                    failed.incrementAndGet();
                    synchronized (firstFailure) {
                        if (firstFailure[0] == null) {
                            firstFailure[0] = String.valueOf(failure);
                        }
                    }
                } else {
                    synchronized (conns) {
                        conns.add(conn);
                    }
                }
                // Last: the opener's final wait must see this connection counted.
                slots.release();
            });
        }
        // Wait for the stragglers, bounded by the same deadline.
        slots.tryAcquire(concurrency, Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        final double seconds = (System.nanoTime() - start) / 1e9;
        final int opened;
        synchronized (conns) {
            opened = conns.size();
        }
        return new OpenResult(opened, failed.get(), opened / seconds, firstFailure[0]);
    }

    /**
     * Opens and closes a few connections that are not counted (at most 16, within 5 s), so that
     * class loading and the interpreted first TLS handshakes of this fresh JVM are not charged to
     * the target's handshake rate.
     */
    private void warmUp(URI uri, Duration timeout) {
        final long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        for (int i = 0; i < 16 && System.nanoTime() < end; i++) {
            try {
                final ClientUpgradeRequest request = new ClientUpgradeRequest(uri);
                request.setTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS);
                final Session session =
                        client.connect(new WarmUp(), request).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                session.close(1000, "warm-up", Callback.NOOP);
            } catch (Exception e) {
                return; // the counted handshakes will fail the same way and report it
            }
        }
    }

    /**
     * JSON mode: connections opened from now on send text messages from {@code messages}, each
     * connection walking the pool from its own offset, and check that every echo is identical to what
     * they sent (FIFO: the echo preserves order). Without it, connections send one fixed payload.
     */
    public void useMessages(String[] messages) {
        this.pool = messages.clone();
    }

    /** Echoes compared with what was sent and found identical (JSON mode; all intervals, warm-up included). */
    public long verified() {
        return verified.sum();
    }

    /** Echoes that differed from what was sent, or came back binary (JSON mode). */
    public long mismatches() {
        return mismatches.sum();
    }

    /** The first mismatch, shortened: what was sent and what came back; null if none. */
    public String firstMismatch() {
        return firstMismatch;
    }

    /** Connections the other side closed before this client closed them (e.g. a policy violation). */
    public int peerCloses() {
        return peerCloses.get();
    }

    /** The first close by the other side: code and reason; null if none. */
    public String firstPeerClose() {
        return firstPeerClose;
    }

    private void mismatch(String sent, String got) {
        mismatches.increment();
        if (firstMismatch == null) {
            synchronized (mismatches) {
                if (firstMismatch == null) {
                    firstMismatch = "sent " + sent.length() + " B '" + shorten(sent) + "', got "
                            + (got == null ? "a binary message" : got.length() + " B '" + shorten(got) + "'");
                }
            }
        }
    }

    private static String shorten(String s) {
        return s.length() <= 60 ? s : s.substring(0, 40) + "…" + s.substring(s.length() - 15);
    }

    /** The number of connections currently open. */
    public int openCount() {
        synchronized (conns) {
            return conns.size() - closed.get();
        }
    }

    /**
     * Closed-loop run: every connection keeps {@code window} messages in flight, results of the
     * first {@code warmup} are dropped, then {@code duration} is measured. {@code messagesPerConn > 0}
     * additionally stops each connection after that many sends (the run ends early when all are done).
     */
    public RunResult runWindowed(
            int window, long messagesPerConn, Duration warmup, Duration duration, Runnable atStart, Runnable atEnd)
            throws InterruptedException {
        final List<Conn> all = snapshot();
        for (Conn conn : all) {
            conn.limit = messagesPerConn > 0 ? messagesPerConn : Long.MAX_VALUE;
            conn.window = window;
        }
        for (Conn conn : all) {
            conn.sendUpTo();
        }
        sleepOrUntilDone(all, warmup.toNanos());
        final long startEchoes = echoes.sum();
        final long startErrors = errors.sum();
        rtts.getIntervalHistogram(); // drop the warm-up
        atStart.run();
        final long start = System.nanoTime();
        sleepOrUntilDone(all, duration.toNanos());
        final double seconds = (System.nanoTime() - start) / 1e9;
        final Histogram histogram = rtts.getIntervalHistogram();
        final long count = echoes.sum() - startEchoes;
        atEnd.run();
        stopAndDrain(all);
        return new RunResult(count, seconds, histogram, errors.sum() - startErrors, 0);
    }

    /**
     * Counted run: exactly {@code total} echoes in all, spread evenly over the connections (each
     * keeping {@code window} in flight), then stop; gives up at {@code timeout}. The result's echoes
     * say how many completed. Whatever observes the target meanwhile sees that traffic and nothing
     * else: no warm-up, and no send after the last.
     */
    public RunResult runEchoes(int window, long total, Duration timeout) throws InterruptedException {
        final List<Conn> all = snapshot();
        final long startEchoes = echoes.sum();
        final long startErrors = errors.sum();
        for (int i = 0; i < all.size(); i++) {
            all.get(i).allow(total / all.size() + (i < total % all.size() ? 1 : 0), window);
        }
        rtts.getIntervalHistogram(); // only this run's round trips
        final long start = System.nanoTime();
        for (Conn conn : all) {
            conn.sendUpTo();
        }
        // Polled every millisecond, not every 50: an observer waiting for the end should see little idle time.
        final long end = start + timeout.toNanos();
        while (System.nanoTime() < end && !all.stream().allMatch(Conn::isDone)) {
            Thread.sleep(1);
        }
        final double seconds = (System.nanoTime() - start) / 1e9;
        final Histogram histogram = rtts.getIntervalHistogram();
        final long count = echoes.sum() - startEchoes;
        stopAndDrain(all);
        return new RunResult(count, seconds, histogram, errors.sum() - startErrors, 0);
    }

    /**
     * Open-loop run: one thread sends {@code rate} messages per second in total, round-robin over the
     * connections, whatever the echoes do. A connection with {@code ringSize} messages still in flight
     * skips its turn; such skips are reported as overruns (the target is saturated).
     */
    public RunResult runPaced(double rate, Duration warmup, Duration duration, Runnable atStart, Runnable atEnd)
            throws InterruptedException {
        final List<Conn> all = snapshot();
        for (Conn conn : all) {
            conn.window = 0; // echoes release nothing: only the pacer sends
        }
        final long start = System.nanoTime();
        final long measureFrom = start + warmup.toNanos();
        final long end = measureFrom + duration.toNanos();
        final double nanosPerMessage = 1e9 / rate;
        long scheduled = 0;
        long overruns = 0;
        long startEchoes = -1;
        long startErrors = 0;
        int next = 0;
        for (long now = System.nanoTime(); now < end; now = System.nanoTime()) {
            if (startEchoes < 0 && now >= measureFrom) {
                startEchoes = echoes.sum();
                startErrors = errors.sum();
                rtts.getIntervalHistogram(); // drop the warm-up
                overruns = 0;
                atStart.run();
            }
            // Send everything that is due by now, each stamped with the time it was due.
            while (true) {
                final long due = start + (long) (scheduled * nanosPerMessage);
                if (due > now) {
                    break;
                }
                if (!all.get(next).sendPaced(due)) {
                    overruns++;
                }
                scheduled++;
                next = next + 1 == all.size() ? 0 : next + 1;
            }
            LockSupport.parkNanos(50_000);
        }
        final Histogram histogram = rtts.getIntervalHistogram();
        final long count = echoes.sum() - Math.max(0, startEchoes);
        atEnd.run();
        stopAndDrain(all);
        return new RunResult(count, duration.toNanos() / 1e9, histogram, errors.sum() - startErrors, overruns);
    }

    private List<Conn> snapshot() {
        synchronized (conns) {
            stopping = false;
            return List.copyOf(conns);
        }
    }

    private static void sleepOrUntilDone(List<Conn> all, long nanos) throws InterruptedException {
        final long end = System.nanoTime() + nanos;
        while (System.nanoTime() < end) {
            if (all.stream().allMatch(Conn::isDone)) {
                return;
            }
            Thread.sleep(Math.min(50, Math.max(1, (end - System.nanoTime()) / 1_000_000)));
        }
    }

    /** Stops sending and waits (at most 10 s) for the echoes still in flight, so runs do not overlap. */
    private void stopAndDrain(List<Conn> all) throws InterruptedException {
        stopping = true;
        final long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < end && all.stream().anyMatch(Conn::inFlight)) {
            Thread.sleep(10);
        }
    }

    /** Closes every connection normally and waits (at most 10 s) for the closes to complete. */
    @Override
    public void close() throws Exception {
        closingAll = true;
        stopping = true;
        final List<Conn> all = snapshot();
        stopping = true;
        for (Conn conn : all) {
            final Session session = conn.session;
            if (session != null && session.isOpen()) {
                session.close(1000, "benchmark done", Callback.NOOP);
            }
        }
        final long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < end && closed.get() < all.size()) {
            Thread.sleep(10);
        }
        client.stop();
    }

    /** The uncounted warm-up connection: reads only what closing needs. */
    public static final class WarmUp implements Session.Listener {
        @Override
        public void onWebSocketOpen(Session session) {
            session.demand();
        }
    }

    /**
     * One connection: explicit demand, a FIFO ring of send times, and reused payload buffers (one per
     * ring slot: a slot is reused only after its echo came back, so its write has long completed).
     * In JSON mode the ring also holds which pool message each slot sent, to check its echo.
     */
    public static final class Conn implements Session.Listener {

        private final LoadClient owner;
        private final long[] sendTimes;
        private final ByteBuffer[] payloads;
        private final String textPayload;
        private final String[] pool;
        private final int[] sentMessages;
        private long nextMessage;
        private volatile Session session;
        private long sent;
        private long received;
        private long limit = Long.MAX_VALUE;
        private int window = 1;

        Conn(LoadClient owner, int ringSize, int size, boolean text, int index) {
            this.owner = owner;
            this.sendTimes = new long[ringSize];
            this.pool = owner.pool;
            this.sentMessages = pool == null ? null : new int[ringSize];
            // Spread the connections over the pool (7919 is prime): each its own deterministic sequence.
            this.nextMessage = pool == null ? 0 : (index * 7919L) % pool.length;
            this.payloads = new ByteBuffer[text || pool != null ? 0 : ringSize];
            final byte[] bytes = new byte[size];
            for (int i = 0; i < size; i++) {
                bytes[i] = (byte) ('a' + i % 26);
            }
            for (int i = 0; i < payloads.length; i++) {
                payloads[i] = ByteBuffer.wrap(bytes.clone());
            }
            this.textPayload = text ? new String(bytes, java.nio.charset.StandardCharsets.US_ASCII) : null;
        }

        @Override
        public void onWebSocketOpen(Session s) {
            this.session = s;
            s.demand();
        }

        @Override
        public void onWebSocketBinary(ByteBuffer payload, Callback callback) {
            callback.succeed();
            onEcho(null);
            session.demand();
        }

        @Override
        public void onWebSocketText(String message) {
            onEcho(message);
            session.demand();
        }

        @Override
        public void onWebSocketError(Throwable cause) {
            owner.errors.increment();
        }

        @Override
        public void onWebSocketClose(int statusCode, String reason, Callback callback) {
            if (!owner.closingAll && owner.peerCloses.getAndIncrement() == 0) {
                owner.firstPeerClose = statusCode + " " + reason;
            }
            owner.closed.incrementAndGet();
            callback.succeed();
        }

        /** {@code text}: the echo of a text message; null for a binary one. */
        private void onEcho(String text) {
            final long now = System.nanoTime();
            synchronized (this) {
                if (received == sent) {
                    if (pool != null) {
                        owner.mismatch("nothing", text);
                    }
                    return; // an echo we did not ask for; nothing to time it against
                }
                final int slot = (int) (received % sendTimes.length);
                final long sentAt = sendTimes[slot];
                if (pool != null) {
                    // ASCII both ways: equal strings are equal bytes (a changed byte changes the string).
                    final String expected = pool[sentMessages[slot]];
                    if (expected.equals(text)) {
                        owner.verified.increment();
                    } else {
                        owner.mismatch(expected, text);
                    }
                }
                received++;
                owner.rtts.recordValue(Math.max(0, now - sentAt));
                owner.echoes.increment();
                sendUpTo();
            }
        }

        /** Counted mode: {@code more} sends from now on, {@code inFlight} at a time. */
        synchronized void allow(long more, int inFlight) {
            limit = sent + more;
            window = inFlight;
        }

        /** Tops the connection up to its window (closed-loop mode). */
        synchronized void sendUpTo() {
            while (!owner.stopping && sent < limit && sent - received < window) {
                send(System.nanoTime());
            }
        }

        /** One open-loop send stamped with its scheduled time; false if the ring is full. */
        synchronized boolean sendPaced(long dueNanos) {
            if (owner.stopping || sent - received >= sendTimes.length) {
                return false;
            }
            send(dueNanos);
            return true;
        }

        // Called with the lock held, so the stamp order is the wire order.
        private void send(long stamp) {
            final Session s = session;
            final int slot = (int) (sent % sendTimes.length);
            sendTimes[slot] = stamp;
            sent++;
            if (pool != null) {
                final int message = (int) (nextMessage++ % pool.length);
                sentMessages[slot] = message;
                s.sendText(pool[message], owner.writeCallback);
            } else if (textPayload != null) {
                s.sendText(textPayload, owner.writeCallback);
            } else {
                final ByteBuffer payload = payloads[slot];
                payload.clear();
                s.sendBinary(payload, owner.writeCallback);
            }
        }

        synchronized boolean isDone() {
            return sent >= limit && received >= sent;
        }

        synchronized boolean inFlight() {
            return received < sent && session != null && session.isOpen();
        }
    }
}
