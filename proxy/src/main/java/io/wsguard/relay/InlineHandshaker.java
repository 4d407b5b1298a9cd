package io.wsguard.relay;

import org.eclipse.jetty.http.HttpException;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpHeaderValue;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.ConnectionMetaData;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.websocket.core.WebSocketComponents;
import org.eclipse.jetty.websocket.core.WebSocketConnection;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;
import org.eclipse.jetty.websocket.core.server.Handshaker;
import org.eclipse.jetty.websocket.core.server.internal.AbstractHandshaker;
import org.eclipse.jetty.websocket.core.server.internal.RFC6455Negotiation;
import org.eclipse.jetty.websocket.core.server.internal.WebSocketNegotiation;
import org.eclipse.jetty.websocket.core.util.WebSocketUtils;

/**
 * The RFC 6455 (HTTP/1.1) server handshake, as Jetty's own, but making an
 * {@link InlineWebSocketConnection} so that the client side's reads run on the selector thread.
 * Jetty's {@code RFC6455Handshaker} is final; the protocol parts are Jetty's public negotiation
 * classes, only the connection differs.
 */
public final class InlineHandshaker extends AbstractHandshaker {

    private static final HttpField UPGRADE_WEBSOCKET = new HttpField(HttpHeader.UPGRADE, "websocket");
    private static final HttpField CONNECTION_UPGRADE =
            new HttpField(HttpHeader.CONNECTION, HttpHeaderValue.UPGRADE.asString());

    private final Handshaker rfc6455 = Handshaker.newInstance();

    /**
     * Whether {@code connection} carries an upgraded WebSocket: Jetty's connection, or the
     * {@link FramePump}'s once it took the endpoint over.
     */
    public static boolean carriesWebSocket(Connection connection) {
        return connection instanceof WebSocketConnection || connection instanceof FramePump.Link;
    }

    @Override
    public boolean isWebSocketUpgradeRequest(Request request) {
        return rfc6455.isWebSocketUpgradeRequest(request);
    }

    @Override
    protected WebSocketNegotiation newNegotiation(
            Request request, Response response, Callback callback, WebSocketComponents components) {
        return new RFC6455Negotiation(request, response, callback, components);
    }

    @Override
    protected boolean validateNegotiation(WebSocketNegotiation negotiation) {
        if (!super.validateNegotiation(negotiation)) {
            return false;
        }
        if (((RFC6455Negotiation) negotiation).getKey() == null) {
            throw new HttpException.RuntimeException(400, "Missing request header 'Sec-WebSocket-Key'");
        }
        return true;
    }

    @Override
    protected WebSocketConnection createWebSocketConnection(Request request, WebSocketCoreSession session) {
        final ConnectionMetaData metaData = request.getConnectionMetaData();
        final Connector connector = metaData.getConnector();
        final EndPoint endPoint = metaData.getConnection().getEndPoint();
        final WebSocketConnection connection = new InlineWebSocketConnection(
                endPoint, connector.getExecutor(), connector.getScheduler(), connector.getByteBufferPool(), session);
        session.setWebSocketConnection(connection);
        return connection;
    }

    @Override
    protected void prepareResponse(Response response, WebSocketNegotiation negotiation) {
        response.setStatus(101);
        final HttpFields.Mutable headers = response.getHeaders();
        headers.put(UPGRADE_WEBSOCKET);
        headers.put(CONNECTION_UPGRADE);
        headers.put(
                HttpHeader.SEC_WEBSOCKET_ACCEPT, WebSocketUtils.hashKey(((RFC6455Negotiation) negotiation).getKey()));
    }
}
