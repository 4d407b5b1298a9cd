package io.wsguard.handshake;

import java.util.List;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;

/**
 * What handshake checks may look at: the upgrade request's headers and the client's address, as
 * resolved through {@code proxy.trustedProxies}. A read-only view; one per request.
 */
public final class HandshakeRequest {

    private final Request request;
    private final String clientIp;
    private final String connectionId;

    public HandshakeRequest(Request request, String clientIp, String connectionId) {
        this.request = request;
        this.clientIp = clientIp;
        this.connectionId = connectionId;
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

    public String path() {
        return request.getHttpURI().getPath();
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

}
