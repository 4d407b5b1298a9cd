package io.wsguard.auth;

import com.nimbusds.jose.util.DefaultResourceRetriever;
import com.nimbusds.jose.util.Resource;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URL;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLSocketFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches the {@code jwksUri} key set from the configured URI and nowhere else, within one deadline.
 *
 * <p>No redirects: the JDK follows them by default (to any https host), and the keys that decide
 * who gets in would then come from wherever the IdP's answer points, which the operator never
 * named. A 3xx is a failed fetch.
 *
 * <p>A deadline for the whole fetch: the JDK's read timeout restarts with every byte, so a server
 * that sends one byte just before each timeout holds a fetch for as long as it likes (the size
 * limit allows hundreds of thousands of bytes). Past {@code fetchTimeout} the fetch's TCP socket is
 * closed from a timer thread, which ends a read blocked on it, and the fetch fails like any other.
 * The plain socket under TLS is closed, not the TLS socket nor the connection: closing those waits
 * for the lock a blocked read holds.
 */
final class JwksRetriever extends DefaultResourceRetriever {

    private static final Logger LOG = LoggerFactory.getLogger(JwksRetriever.class);

    /**
     * Timers for fetch deadlines and for verifications waiting on keys: one daemon thread for the
     * whole process, since fetches are rate-limited and each timer only closes a socket or
     * completes a future.
     */
    static final ScheduledThreadPoolExecutor DEADLINES = deadlines();

    /** The fetch running on this thread: nimbus opens its connection inside {@link #retrieveResource}. */
    private static final ThreadLocal<Fetch> CURRENT = new ThreadLocal<>();

    private final SSLSocketFactory tls;
    private final int connectTimeoutMillis;
    private final Duration fetchTimeout;

    /** @param tls trust for the server; null for the JVM's default */
    JwksRetriever(
            Duration connectTimeout, Duration readTimeout, Duration fetchTimeout, int sizeLimit, SSLSocketFactory tls) {
        // No factory for nimbus to set: each fetch gets its own, in openHTTPConnection.
        super((int) connectTimeout.toMillis(), (int) readTimeout.toMillis(), sizeLimit, true, null);
        if (fetchTimeout.isNegative() || fetchTimeout.isZero()) {
            throw new IllegalArgumentException("fetchTimeout: " + fetchTimeout + " (expected: > 0)");
        }
        this.tls = tls == null ? HttpsURLConnection.getDefaultSSLSocketFactory() : tls;
        this.connectTimeoutMillis = (int) connectTimeout.toMillis();
        this.fetchTimeout = fetchTimeout;
    }

    @Override
    public Resource retrieveResource(URL url) throws IOException {
        final Fetch fetch = new Fetch();
        final ScheduledFuture<?> deadline =
                DEADLINES.schedule(fetch::expire, fetchTimeout.toNanos(), TimeUnit.NANOSECONDS);
        CURRENT.set(fetch);
        try {
            return super.retrieveResource(url);
        } catch (IOException e) {
            if (fetch.expired()) {
                // The URI is left out: its query may hold a credential (README, /admin/policy redaction).
                throw new IOException("jwksUri fetch exceeded its " + fetchTimeout.toMillis() + " ms deadline", e);
            }
            throw e;
        } finally {
            CURRENT.remove();
            deadline.cancel(false);
        }
    }

    @Override
    protected HttpURLConnection openHTTPConnection(URL url) throws IOException {
        final HttpURLConnection connection = super.openHTTPConnection(url);
        connection.setInstanceFollowRedirects(false);
        final Fetch fetch = CURRENT.get();
        if (fetch != null && connection instanceof HttpsURLConnection https) {
            // A connection kept alive from an earlier fetch has a socket this fetch's deadline cannot
            // reach. The JDK keeps connections per socket factory: a factory of the fetch's own never
            // finds one, and "Connection: close" keeps this one from being kept.
            https.setSSLSocketFactory(new OverClosablePlainSockets(tls, connectTimeoutMillis, fetch));
            https.setRequestProperty("Connection", "close");
        }
        return connection;
    }

    /** One fetch's TCP socket, and whether its deadline has passed. */
    private static final class Fetch {

        private Socket socket;
        private boolean expired;

        /** Called when the HTTPS client layers TLS over {@code plain}, before the TLS handshake. */
        synchronized void watch(Socket plain) throws IOException {
            if (expired) {
                close(plain); // connected after the deadline: the handshake never starts
                throw new IOException("jwksUri fetch exceeded its deadline while connecting");
            }
            socket = plain;
        }

        void expire() {
            final Socket toClose;
            synchronized (this) {
                expired = true;
                toClose = socket;
            }
            if (toClose != null) {
                close(toClose);
            }
        }

        synchronized boolean expired() {
            return expired;
        }

        private static void close(Socket plain) {
            try {
                plain.close();
            } catch (IOException | RuntimeException e) {
                LOG.debug("closing a jwksUri fetch past its deadline failed", e);
            }
        }
    }

    /**
     * TLS over a plain socket that the fetch's deadline can close. It does not make unconnected
     * sockets (the {@code createSocket()} it inherits throws, as {@code SocketFactory} documents), so
     * the JDK's HTTPS client connects a plain socket itself, with its connect timeout, and hands it
     * to {@link #createSocket(Socket, String, int, boolean)}, as it does behind an HTTP proxy. Where
     * that fails, the client tries {@code createSocket(host, port)} instead: those connect a plain
     * socket here and take the same path, so no fetch escapes its deadline. Trust, hostname
     * verification and SNI are the JDK's, as without it.
     */
    private static final class OverClosablePlainSockets extends SSLSocketFactory {

        private final SSLSocketFactory tls;
        private final int connectTimeoutMillis;
        private final Fetch fetch;

        OverClosablePlainSockets(SSLSocketFactory tls, int connectTimeoutMillis, Fetch fetch) {
            this.tls = tls;
            this.connectTimeoutMillis = connectTimeoutMillis;
            this.fetch = fetch;
        }

        @Override
        public Socket createSocket(Socket plain, String host, int port, boolean autoClose) throws IOException {
            fetch.watch(plain);
            return tls.createSocket(plain, host, port, autoClose);
        }

        @Override
        public Socket createSocket(String host, int port) throws IOException {
            return layered(new InetSocketAddress(host, port), null, host);
        }

        @Override
        public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
            return layered(new InetSocketAddress(host, port), new InetSocketAddress(localHost, localPort), host);
        }

        @Override
        public Socket createSocket(InetAddress host, int port) throws IOException {
            return layered(new InetSocketAddress(host, port), null, host.getHostAddress());
        }

        @Override
        public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort)
                throws IOException {
            return layered(
                    new InetSocketAddress(address, port),
                    new InetSocketAddress(localAddress, localPort),
                    address.getHostAddress());
        }

        private Socket layered(InetSocketAddress remote, InetSocketAddress local, String host) throws IOException {
            final Socket plain = new Socket();
            try {
                if (local != null) {
                    plain.bind(local);
                }
                plain.connect(remote, connectTimeoutMillis);
                return createSocket(plain, host, remote.getPort(), true);
            } catch (IOException | RuntimeException e) {
                plain.close();
                throw e;
            }
        }

        @Override
        public String[] getDefaultCipherSuites() {
            return tls.getDefaultCipherSuites();
        }

        @Override
        public String[] getSupportedCipherSuites() {
            return tls.getSupportedCipherSuites();
        }
    }

    private static ScheduledThreadPoolExecutor deadlines() {
        final AtomicInteger count = new AtomicInteger();
        final ScheduledThreadPoolExecutor executor = new ScheduledThreadPoolExecutor(1, task -> {
            final Thread thread = new Thread(task, "wsguard-jwks-deadline-" + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
        // Almost every timer is cancelled (fetches end in time, keys come): keep none of them queued.
        executor.setRemoveOnCancelPolicy(true);
        return executor;
    }
}
