package io.wsguard.audit;

import io.wsguard.policy.SyslogPolicy;
import io.wsguard.tls.ClientTrust;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code audit.sink: syslog}: sends each line as an RFC 5424 message ({@link SyslogFormat}) over
 * UDP (RFC 5426: one datagram per message), TCP (RFC 6587 octet counting: {@code LEN SP MSG}) or
 * TLS (RFC 5425, octet counting too; the server's chain checked against {@code ca} and its name
 * against the address's host).
 *
 * <p><b>Threads.</b> {@link #write} runs on the audit writer thread and never waits on the network:
 * it formats the message and appends it to a buffer bounded by {@code bufferSize} bytes. One daemon
 * thread, {@code wsguard-syslog}, connects, sends the buffer in order and reconnects after a failure
 * with a backoff from {@value #FIRST_BACKOFF_MILLIS} ms doubling to {@value #MAX_BACKOFF_MILLIS} ms.
 * A message whose send failed stays at the buffer's head and is sent again on the next connection.
 * A TCP or TLS connection has a reader thread that sees the server close it (syslog servers send
 * nothing otherwise) and closes the socket, so that the next send fails and is kept rather than
 * written into a dead connection. A send that has not finished after {@value #SEND_TIMEOUT_SECONDS} s
 * (a server that stopped reading) has its connection closed by the writer thread.
 *
 * <p><b>Loss, counted and reported.</b> While the server cannot be reached the buffer fills; past
 * it new lines are dropped (the oldest kept, so that what is lost is one run of lines), and so is
 * a message larger than {@value #UDP_MAX_MESSAGE} bytes over UDP or larger than the whole buffer.
 * Both are counted ({@link #dropped}); once the sender is connected and the buffer half empty again,
 * {@link #takeDropReport} hands the run to the log, which writes it as an {@code audit_dropped} line
 * with the lost lines' times and sequence numbers. TCP and TLS can still lose what the kernel had
 * accepted when a connection broke, and UDP what the network lost: syslog has no acknowledgements.
 * With an integrity key, the numbers show every such gap.
 */
final class SyslogAuditSink implements LineSink {

    /**
     * The largest message sent over UDP: rsyslog's default {@code maxMessageSize}, and well below
     * the 65,507 bytes a datagram can hold (larger ones fragment, and fragments get lost).
     */
    static final int UDP_MAX_MESSAGE = 8192;

    static final long FIRST_BACKOFF_MILLIS = 200;
    static final long MAX_BACKOFF_MILLIS = 5_000;
    static final long SEND_TIMEOUT_SECONDS = 30;
    private static final int CONNECT_TIMEOUT_MILLIS = 5_000;
    /** What {@link #close} waits for the buffer to go out. */
    private static final long CLOSE_DRAIN_NANOS = TimeUnit.SECONDS.toNanos(5);

    private static final Logger LOG = LoggerFactory.getLogger(SyslogAuditSink.class);

    private final SyslogPolicy policy;
    private final SyslogFormat format;
    private final SSLContext tls; // null unless the transport is TLS
    private final long capacity;
    private final int maxMessage;
    private final String target;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition notEmpty = lock.newCondition();
    private final ArrayDeque<byte[]> buffer = new ArrayDeque<>(); // guarded by lock
    private long bufferedBytes; // guarded by lock
    private Run run; // guarded by lock: the lines lost since the last report

    private final AtomicLong droppedBufferFull = new AtomicLong();
    private final AtomicLong droppedOversized = new AtomicLong();
    private volatile boolean connected;
    private volatile boolean closing;
    private volatile long closeDeadline;
    /** The connection the sender uses, for the writer's watchdog and for close; the sender's own otherwise. */
    private volatile Connection connection;
    /** System.nanoTime() when the send in progress began, 0 when none is. */
    private volatile long sendStarted;

    private final Thread sender;

    SyslogAuditSink(SyslogPolicy policy) {
        this(policy, SyslogFormat.localHostName(), ProcessHandle.current().pid());
    }

    SyslogAuditSink(SyslogPolicy policy, String hostName, long pid) {
        this.policy = policy;
        this.format = new SyslogFormat(policy.facility(), hostName, policy.appName(), pid);
        this.tls = policy.transport() == SyslogPolicy.Transport.TLS ? ClientTrust.context(policy.ca()) : null;
        this.capacity = policy.bufferSize();
        this.maxMessage = (int) Math.min(
                policy.transport() == SyslogPolicy.Transport.UDP ? UDP_MAX_MESSAGE : Integer.MAX_VALUE, capacity);
        this.target = policy.transport().scheme() + "://" + hostPort(policy.host(), policy.port());
        this.sender = new Thread(this::runSender, "wsguard-syslog");
        sender.setDaemon(true);
        sender.start();
    }

    @Override
    public void write(String line) {
        watchdog();
        final SyslogFormat.Message message = format.format(line);
        final int size = message.bytes().length;
        lock.lock();
        try {
            if (size > maxMessage) {
                droppedOversized.incrementAndGet();
                lost(message).oversized++;
            } else if (bufferedBytes + size > capacity) {
                droppedBufferFull.incrementAndGet();
                lost(message).bufferFull++;
            } else {
                buffer.addLast(message.bytes());
                bufferedBytes += size;
                notEmpty.signal();
            }
        } finally {
            lock.unlock();
        }
    }

    /** Nothing to do: the sender sends as soon as it can, and the writer must not wait for the network. */
    @Override
    public void flush() {
        watchdog();
    }

    @Override
    public DropReport takeDropReport() {
        watchdog();
        lock.lock();
        try {
            if (run == null || !connected || bufferedBytes > capacity / 2) {
                return null;
            }
            final Run lost = run;
            run = null;
            return new DropReport(
                    lost.lines,
                    lost.firstTs,
                    lost.lastTs,
                    lost.firstSeq,
                    lost.lastSeq,
                    lost.lastMac,
                    lost.bufferFull,
                    lost.oversized,
                    target + " unreachable, " + capacity + " bytes buffered");
        } finally {
            lock.unlock();
        }
    }

    @Override
    public long dropped(String reason) {
        return switch (reason) {
            case DropReport.BUFFER_FULL -> droppedBufferFull.get();
            case DropReport.OVERSIZED -> droppedOversized.get();
            default -> 0;
        };
    }

    /** Whether the sender has a working connection (tests, and the report's timing). */
    boolean connected() {
        return connected;
    }

    /** Waits up to 5 s for the buffer to go out, then closes the connection. */
    @Override
    public void close() {
        closeDeadline = System.nanoTime() + CLOSE_DRAIN_NANOS;
        closing = true;
        lock.lock();
        try {
            notEmpty.signalAll();
        } finally {
            lock.unlock();
        }
        LockSupport.unpark(sender);
        try {
            sender.join(TimeUnit.NANOSECONDS.toMillis(CLOSE_DRAIN_NANOS) + 1_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // A sender stuck in a send: closing its socket ends the send.
        closeQuietly(connection);
        final int left = buffered();
        if (left > 0) {
            LOG.warn("audit: {} lines not sent to {} at shutdown", left, target);
        }
    }

    private int buffered() {
        lock.lock();
        try {
            return buffer.size();
        } finally {
            lock.unlock();
        }
    }

    /** The run of lost lines {@code message} joins (guarded by lock). */
    private Run lost(SyslogFormat.Message message) {
        if (run == null) {
            run = new Run(message.ts(), message.seq());
        }
        run.lines++;
        run.lastTs = message.ts();
        run.lastSeq = message.seq();
        run.lastMac = message.mac();
        return run;
    }

    /** Closes a connection whose send has hung past the timeout: the sender then reconnects. */
    private void watchdog() {
        final long started = sendStarted;
        if (started != 0 && System.nanoTime() - started > TimeUnit.SECONDS.toNanos(SEND_TIMEOUT_SECONDS)) {
            sendStarted = 0;
            LOG.warn("audit: a send to {} took over {} s; reconnecting", target, SEND_TIMEOUT_SECONDS);
            closeQuietly(connection);
        }
    }

    private void runSender() {
        long backoff = FIRST_BACKOFF_MILLIS;
        boolean outageLogged = false;
        while (true) {
            final byte[] next;
            lock.lock();
            try {
                while (buffer.isEmpty() && !closing) {
                    notEmpty.awaitUninterruptibly();
                }
                if (buffer.isEmpty() || (closing && System.nanoTime() - closeDeadline > 0)) {
                    break;
                }
                next = buffer.peekFirst();
            } finally {
                lock.unlock();
            }
            try {
                Connection current = connection;
                if (current == null) {
                    current = open();
                    connection = current;
                }
                sendStarted = System.nanoTime() | 1; // never 0 while a send is in progress
                try {
                    current.send(next);
                } finally {
                    sendStarted = 0;
                }
                lock.lock();
                try {
                    buffer.pollFirst();
                    bufferedBytes -= next.length;
                } finally {
                    lock.unlock();
                }
                if (!connected) {
                    connected = true;
                    if (outageLogged) {
                        LOG.info("audit: sending to {} again", target);
                    }
                    outageLogged = false;
                }
                backoff = FIRST_BACKOFF_MILLIS;
            } catch (IOException | RuntimeException e) {
                // RuntimeException: an SSLSocket can throw unchecked exceptions on a closed connection.
                connected = false;
                closeQuietly(connection);
                connection = null;
                if (!outageLogged) {
                    outageLogged = true;
                    LOG.warn(
                            "audit: cannot send to {} ({}); buffering up to {} bytes and retrying",
                            target,
                            e.toString(),
                            capacity);
                }
                if (closing) {
                    break;
                }
                pause(backoff);
                backoff = Math.min(MAX_BACKOFF_MILLIS, backoff * 2);
            }
        }
        closeQuietly(connection);
        connection = null;
        connected = false;
    }

    /** Sleeps about {@code millis} (±20%, so that many proxies do not reconnect in step); close wakes it. */
    private void pause(long millis) {
        final long jittered = millis * (80 + ThreadLocalRandom.current().nextInt(41)) / 100;
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(jittered);
        for (long left; !closing && (left = deadline - System.nanoTime()) > 0; ) {
            LockSupport.parkNanos(this, left);
        }
    }

    /** A new connection; the host is resolved again each time, so a moved server is found. */
    private Connection open() throws IOException {
        final InetSocketAddress address = new InetSocketAddress(policy.host(), policy.port());
        if (address.isUnresolved()) {
            throw new IOException("cannot resolve " + policy.host());
        }
        if (policy.transport() == SyslogPolicy.Transport.UDP) {
            return new Datagrams(address);
        }
        final Socket plain = new Socket();
        try {
            plain.setKeepAlive(true);
            plain.connect(address, CONNECT_TIMEOUT_MILLIS);
            if (tls == null) {
                return new Stream(plain, plain);
            }
            final SSLSocket secure =
                    (SSLSocket) tls.getSocketFactory().createSocket(plain, policy.host(), policy.port(), true);
            final SSLParameters parameters = secure.getSSLParameters();
            parameters.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
            // RFC 5425 §5.2 and RFC 6125: the certificate must name the host the address names.
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
            secure.setSSLParameters(parameters);
            secure.setSoTimeout(CONNECT_TIMEOUT_MILLIS);
            secure.startHandshake();
            secure.setSoTimeout(0);
            return new Stream(secure, plain);
        } catch (IOException | RuntimeException e) {
            closeQuietly(plain);
            throw e;
        }
    }

    private static void closeQuietly(Closeable closeable) {
        if (closeable != null) {
            try {
                closeable.close();
            } catch (IOException | RuntimeException ignored) {
                // Already failing or closed: nothing more to learn from it.
            }
        }
    }

    private static String hostPort(String host, int port) {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    /** One connection to the server. */
    private interface Connection extends Closeable {
        /** Sends one message, framed as the transport needs; throws if it cannot. */
        void send(byte[] message) throws IOException;
    }

    /** UDP: one datagram per message; a refusal (ICMP port unreachable) fails the next send. */
    private static final class Datagrams implements Connection {
        private final DatagramChannel channel;

        Datagrams(InetSocketAddress address) throws IOException {
            channel = DatagramChannel.open();
            try {
                channel.connect(address);
            } catch (IOException e) {
                channel.close();
                throw e;
            }
        }

        @Override
        public void send(byte[] message) throws IOException {
            channel.write(ByteBuffer.wrap(message));
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /** TCP or TLS with octet counting (RFC 6587 §3.4.1, RFC 5425 §4.3): {@code LEN SP MSG}. */
    private static final class Stream implements Connection {
        private final Socket socket;
        private final Socket plain;
        private final OutputStream out;

        Stream(Socket socket, Socket plain) throws IOException {
            this.socket = socket;
            this.plain = plain;
            this.out = new BufferedOutputStream(socket.getOutputStream(), 16 * 1024);
            final InputStream in = socket.getInputStream();
            final Thread reader = new Thread(() -> watch(in), "wsguard-syslog-reader");
            reader.setDaemon(true);
            reader.start();
        }

        /** Reads until the server closes the connection (it sends nothing else), then closes ours. */
        private void watch(InputStream in) {
            final byte[] discard = new byte[512];
            try {
                while (in.read(discard) >= 0) {
                    // A syslog server has nothing to say; whatever comes is ignored.
                }
            } catch (IOException | RuntimeException e) {
                // Closed by either side: the socket is closed below either way.
            }
            try {
                close();
            } catch (IOException ignored) {
                // Nothing more to do: the next send fails and reconnects.
            }
        }

        @Override
        public void send(byte[] message) throws IOException {
            out.write((message.length + " ").getBytes(StandardCharsets.US_ASCII));
            out.write(message);
            out.flush();
        }

        @Override
        public void close() throws IOException {
            try {
                socket.close();
            } finally {
                plain.close();
            }
        }
    }

    /** A run of lost lines not reported yet. */
    private static final class Run {
        final String firstTs;
        final long firstSeq;
        String lastTs;
        long lastSeq;
        String lastMac;
        long lines;
        long bufferFull;
        long oversized;

        Run(String firstTs, long firstSeq) {
            this.firstTs = firstTs;
            this.firstSeq = firstSeq;
            this.lastTs = firstTs;
            this.lastSeq = firstSeq;
        }
    }
}
