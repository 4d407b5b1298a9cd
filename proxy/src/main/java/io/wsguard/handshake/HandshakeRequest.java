package io.wsguard.handshake;

import io.wsguard.admission.Admission;
import io.wsguard.auth.Principal;
import io.wsguard.route.RequestPaths;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Optional;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Request;

/**
 * What handshake checks may look at: the upgrade request's headers and the client's address, as
 * resolved through {@code proxy.trustedProxies}; one per request.
 *
 * <p>Two things are written by checks, for later checks and for the connection: the verified
 * {@link Principal} (by the token check) and leases, such as a slot under a connection cap, which
 * the connection's {@link Admission} holds and gives back when the handshake fails or the connection
 * closes. The chain runs its checks one after another, so they never race on these; the fields are
 * volatile because the stages may complete on different threads.
 */
public final class HandshakeRequest {

    private final Request request;
    private final String clientIp;
    private final String connectionId;
    private volatile Principal principal;
    private volatile String verifiedToken;
    private final Admission admission = new Admission();
    private final long startedNanos = System.nanoTime();

    public HandshakeRequest(Request request, String clientIp, String connectionId) {
        this.request = request;
        this.clientIp = clientIp;
        this.connectionId = connectionId;
    }

    /** {@link System#nanoTime()} when the request reached wsguard's handler: the handshake's duration starts here. */
    public long startedNanos() {
        return startedNanos;
    }

    /** The first value of a request header, or null. */
    public String header(String name) {
        return request.getHeaders().get(name);
    }

    public HttpFields headers() {
        return request.getHeaders();
    }

    /** The client's IP: the peer, or the address a trusted proxy forwarded for. */
    public String clientIp() {
        return clientIp;
    }

    /** The id this connection gets in the audit log ({@code conn}). */
    public String connectionId() {
        return connectionId;
    }

    /** The Host the client asked for (with port, as sent). */
    public String host() {
        final String host = request.getHeaders().get(HttpHeader.HOST);
        return host != null ? host : request.getHttpURI().getAuthority();
    }

    /**
     * The decoded path routes are matched against, or null when it must match none
     * ({@link RequestPaths#routable}: dot segments, path parameters).
     */
    public String path() {
        return RequestPaths.routable(request.getHttpURI().getPath());
    }

    /** The raw query string, or null. */
    public String query() {
        return request.getHttpURI().getQuery();
    }

    /** The subprotocols offered in {@code Sec-WebSocket-Protocol}, in order. */
    public List<String> subprotocols() {
        return request.getHeaders().getCSV(HttpHeader.SEC_WEBSOCKET_SUBPROTOCOL, true);
    }

    public boolean isSecure() {
        return request.isSecure();
    }

    /**
     * The certificate the client showed in the TLS handshake, or null. Only a listener with
     * {@code clientAuth: optional} or {@code required} asks for one, and TLS completes only when it
     * chains to that listener's {@code clientCAs}: a certificate here is a verified one.
     */
    public X509Certificate clientCertificate() {
        return clientCertificate(request);
    }

    /** The verified client certificate of {@code request}'s TLS connection, or null. */
    public static X509Certificate clientCertificate(Request request) {
        if (request.getAttribute(EndPoint.SslSessionData.ATTRIBUTE) instanceof EndPoint.SslSessionData tls) {
            final X509Certificate[] chain = tls.peerCertificates();
            return chain == null || chain.length == 0 ? null : chain[0];
        }
        return null;
    }

    /** The client a verified token named; empty before the token check or when the route has none. */
    public Optional<Principal> principal() {
        return Optional.ofNullable(principal);
    }

    /** The subject of the verified token, or null. */
    public String subject() {
        final Principal p = principal;
        return p == null ? null : p.subject();
    }

    /** The token that verified, exactly as verified; null before the token check or when none did. */
    public String verifiedToken() {
        return verifiedToken;
    }

    /** Called by the token check once the token verified. */
    public void authenticate(Principal principal, String token) {
        this.principal = principal;
        this.verifiedToken = token;
    }

    /**
     * Registers something to give back when this connection ends (or its handshake fails): held by
     * the connection's {@link Admission}. Given back at once if the admission was already released.
     */
    public void addLease(Runnable release) {
        admission.hold(release::run);
    }

    /** Gives back everything the connection's admission holds; later calls do nothing. */
    public void releaseLeases() {
        admission.release();
    }

    /**
     * What this connection holds, without the request: kept for as long as the connection lives,
     * it must not hold the HTTP request (and through it the whole HTTP/1 connection state, ~6 KiB
     * per connection) after the upgrade.
     */
    public Admission admission() {
        return admission;
    }
}
