package io.wsguard.relay;

import java.io.EOFException;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.eclipse.jetty.http.HttpException;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpGenerator;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpHeaderValue;
import org.eclipse.jetty.http.HttpParser;
import org.eclipse.jetty.http.HttpURI;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.http.MetaData;
import org.eclipse.jetty.io.AbstractConnection;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.BufferUtil;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.Behavior;
import org.eclipse.jetty.websocket.core.ExtensionConfig;
import org.eclipse.jetty.websocket.core.ExtensionStack;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.Negotiated;
import org.eclipse.jetty.websocket.core.WebSocketComponents;
import org.eclipse.jetty.websocket.core.WebSocketConnection;
import org.eclipse.jetty.websocket.core.WebSocketConstants;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;
import org.eclipse.jetty.websocket.core.util.WebSocketUtils;

/**
 * The client half of one RFC 6455 opening handshake (§4.1) with an upstream, on a connection that is
 * already open (and TLS-wrapped for {@code wss://}): writes the upgrade request, reads the answer with
 * Jetty's HTTP parser, checks it as §4.1 says a client must, and replaces itself with the WebSocket
 * connection the proxy relays through.
 *
 * <p>wsguard makes that connection itself, instead of through Jetty's HTTP client, for three reasons:
 * its reads run on the selector thread from the first frame ({@link InlineWebSocketConnection}, as on
 * the client side); its frames are masked with keys from {@link MaskKeys}; and a handshake costs no
 * HTTP client exchange, conversation or connection pool (which also capped the upgrades queued per
 * upstream at 1,024).
 *
 * <p>Bytes the upstream sends right behind its {@code 101} answer are handed to the WebSocket
 * connection, never dropped. Header values are written by Jetty's HTTP generator, which replaces CR
 * and LF: a claim or a configured value cannot split the request.
 */
final class UpstreamHandshake extends AbstractConnection implements Connection.UpgradeFrom, HttpParser.ResponseHandler {

    /** Largest upgrade answer read (status line and headers); a larger one fails the attempt. */
    static final int MAX_RESPONSE_HEAD = 16 * 1024;

    private static final int REQUEST_HEAD = 8 * 1024;
    private static final int MAX_REQUEST_HEAD = 64 * 1024;
    private static final SecureRandom KEYS = new SecureRandom();

    /** What the handshake needs from the connector and the attempt; {@code result} completes once. */
    record Setup(
            URI uri,
            UpstreamConnector.Request request,
            FrameHandler handler,
            WebSocketComponents components,
            Scheduler scheduler,
            ByteBufferPool pool,
            CompletableFuture<WebSocketCoreSession> result) {}

    private final Setup setup;
    private final String key;
    private final HttpParser parser = new HttpParser(this, MAX_RESPONSE_HEAD);
    private final HttpFields.Mutable answer = HttpFields.build();
    private final ByteBuffer input = BufferUtil.allocate(MAX_RESPONSE_HEAD);
    private int status;
    private boolean headerComplete;
    private boolean messageComplete;
    private volatile boolean upgraded;

    UpstreamHandshake(EndPoint endPoint, Executor executor, Setup setup) {
        super(endPoint, executor);
        this.setup = setup;
        final byte[] nonce = new byte[16];
        KEYS.nextBytes(nonce);
        this.key = Base64.getEncoder().encodeToString(nonce);
    }

    @Override
    public void onOpen() {
        super.onOpen();
        if (setup.result().isDone()) {
            // The attempt timed out while this connection was being made.
            getEndPoint().close();
            return;
        }
        final ByteBuffer head;
        try {
            head = requestHead();
        } catch (IOException | RuntimeException e) {
            fail(e);
            return;
        }
        getEndPoint().write(Callback.from(this::fillInterested, this::fail), head);
    }

    @Override
    public void onFillable() {
        try {
            while (!setup.result().isDone()) {
                final int filled = getEndPoint().fill(input);
                if (filled < 0) {
                    parser.atEOF();
                    parser.parseNext(input);
                    fail(new EOFException("upstream closed the connection during the upgrade"));
                    return;
                }
                parser.parseNext(input);
                if (messageComplete || (headerComplete && status != 101)) {
                    answered();
                    return;
                }
                if (filled == 0) {
                    fillInterested();
                    return;
                }
                // The parser keeps what it has taken; only the unparsed rest stays in the buffer.
                BufferUtil.compact(input);
                if (BufferUtil.space(input) == 0) {
                    throw new IOException(
                            "upstream's answer to the upgrade has a head larger than " + MAX_RESPONSE_HEAD + " bytes");
                }
            }
        } catch (Throwable failure) {
            fail(failure);
        }
    }

    @Override
    public void onClose(Throwable cause) {
        super.onClose(cause);
        if (!upgraded) {
            fail(cause != null ? cause : new EOFException("upstream connection closed during the upgrade"));
        }
    }

    @Override
    public ByteBuffer onUpgradeFrom() {
        // The WebSocket connection copies what is left into its own buffer.
        return BufferUtil.hasContent(input) ? input : null;
    }

    /** Fails the attempt (once) and closes the connection. */
    void fail(Throwable failure) {
        if (setup.result().completeExceptionally(failure)) {
            getEndPoint().close(failure);
        }
    }

    private ByteBuffer requestHead() throws IOException {
        final URI uri = setup.uri();
        final UpstreamConnector.Request request = setup.request();
        final HttpFields.Mutable fields = HttpFields.build();
        fields.put(HttpHeader.HOST, hostHeader(uri));
        fields.put(HttpHeader.UPGRADE, "websocket");
        fields.put(HttpHeader.CONNECTION, HttpHeaderValue.UPGRADE.asString());
        fields.put(HttpHeader.SEC_WEBSOCKET_KEY, key);
        fields.put(HttpHeader.SEC_WEBSOCKET_VERSION, WebSocketConstants.SPEC_VERSION_STRING);
        if (!request.subprotocols().isEmpty()) {
            fields.put(HttpHeader.SEC_WEBSOCKET_SUBPROTOCOL, String.join(", ", request.subprotocols()));
        }
        if (!request.extensions().isEmpty()) {
            fields.put(HttpHeader.SEC_WEBSOCKET_EXTENSIONS, String.join(", ", request.extensions()));
        }
        for (HttpField field : request.headers()) {
            // The handshake's own headers are wsguard's to write; a forwarded copy would contradict them.
            if (!isHandshakeHeader(field.getHeader())) {
                fields.add(field);
            }
        }
        final HttpURI target = HttpURI.build()
                .path(uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/" : uri.getRawPath())
                .query(uri.getRawQuery());
        final MetaData.Request info = new MetaData.Request("GET", target, HttpVersion.HTTP_1_1, fields);
        for (int size = REQUEST_HEAD; size <= MAX_REQUEST_HEAD; size *= 4) {
            final HttpGenerator generator = new HttpGenerator();
            final ByteBuffer head = BufferUtil.allocate(size);
            final HttpGenerator.Result result = generator.generateRequest(info, head, null, null, true);
            if (result == HttpGenerator.Result.FLUSH) {
                return head;
            }
            if (result != HttpGenerator.Result.HEADER_OVERFLOW) {
                throw new IOException("could not write the upgrade request: " + result);
            }
        }
        throw new IOException("upgrade request headers larger than " + MAX_REQUEST_HEAD + " bytes");
    }

    private static boolean isHandshakeHeader(HttpHeader header) {
        return header == HttpHeader.HOST
                || header == HttpHeader.UPGRADE
                || header == HttpHeader.CONNECTION
                || header == HttpHeader.SEC_WEBSOCKET_KEY
                || header == HttpHeader.SEC_WEBSOCKET_VERSION
                || header == HttpHeader.SEC_WEBSOCKET_SUBPROTOCOL
                || header == HttpHeader.SEC_WEBSOCKET_EXTENSIONS
                || header == HttpHeader.CONTENT_LENGTH
                || header == HttpHeader.TRANSFER_ENCODING;
    }

    private static String hostHeader(URI uri) {
        final int port = uri.getPort();
        final boolean defaultPort = port < 0 || port == ("wss".equalsIgnoreCase(uri.getScheme()) ? 443 : 80);
        final String host = uri.getHost();
        final String bracketed = host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host;
        return defaultPort ? bracketed : bracketed + ":" + port;
    }

    /** The whole head is in: refused, or checked and upgraded. */
    private void answered() throws IOException {
        if (status != 101) {
            fail(new UpstreamRefusedException(status, setup.uri().toString()));
            return;
        }
        final String upgrade = answer.get(HttpHeader.UPGRADE);
        if (upgrade == null || !upgrade.trim().equalsIgnoreCase("websocket")) {
            throw new IOException("upstream answered 101 without 'Upgrade: websocket'");
        }
        if (!answer.contains(HttpHeader.CONNECTION, "upgrade")) {
            throw new IOException("upstream answered 101 without 'Connection: Upgrade'");
        }
        if (!WebSocketUtils.hashKey(key).equals(answer.get(HttpHeader.SEC_WEBSOCKET_ACCEPT))) {
            throw new IOException("upstream answered 101 with a wrong Sec-WebSocket-Accept");
        }
        final String subprotocol = negotiatedSubprotocol();
        final ExtensionStack extensions = negotiatedExtensions();

        final Negotiated negotiated = new Negotiated(
                setup.uri(),
                subprotocol,
                "wss".equalsIgnoreCase(setup.uri().getScheme()),
                extensions,
                WebSocketConstants.SPEC_VERSION_STRING);
        final WebSocketCoreSession session =
                new WebSocketCoreSession(setup.handler(), Behavior.CLIENT, negotiated, setup.components());
        setup.request().configuration().customize(session);
        final EndPoint endPoint = getEndPoint();
        final WebSocketConnection connection = new InlineWebSocketConnection(
                endPoint, getExecutor(), setup.scheduler(), setup.pool(), session, new MaskKeys());
        session.setWebSocketConnection(connection);
        upgraded = true;
        endPoint.upgrade(connection);
        if (!setup.result().complete(session)) {
            // Timed out meanwhile: the caller is gone, and so must the connection be.
            session.abort();
        }
    }

    private String negotiatedSubprotocol() throws IOException {
        final List<String> values = answer.getCSV(HttpHeader.SEC_WEBSOCKET_SUBPROTOCOL, false);
        if (values.isEmpty()) {
            return null;
        }
        if (values.size() > 1) {
            throw new IOException("upstream chose more than one subprotocol");
        }
        final String chosen = values.get(0);
        if (!setup.request().subprotocols().contains(chosen)) {
            throw new IOException("upstream chose a subprotocol that was not offered");
        }
        return chosen;
    }

    /** RFC 6455 §4.1: every extension in the answer was offered, and none twice. */
    private ExtensionStack negotiatedExtensions() throws IOException {
        final List<ExtensionConfig> offered =
                ExtensionConfig.parseList(setup.request().extensions().toArray(String[]::new));
        final List<ExtensionConfig> chosen = new ArrayList<>();
        for (String value : answer.getCSV(HttpHeader.SEC_WEBSOCKET_EXTENSIONS, false)) {
            final ExtensionConfig config = ExtensionConfig.parse(value);
            final String name = config.getName().toLowerCase(Locale.ROOT);
            if (offered.stream().noneMatch(o -> o.getName().equalsIgnoreCase(name))) {
                throw new IOException("upstream chose an extension that was not offered: " + config.getName());
            }
            if (chosen.stream().anyMatch(c -> c.getName().equalsIgnoreCase(name))) {
                throw new IOException("upstream chose an extension twice: " + config.getName());
            }
            chosen.add(config);
        }
        final ExtensionStack stack = new ExtensionStack(setup.components(), Behavior.CLIENT);
        stack.negotiate(offered, chosen);
        return stack;
    }

    // ---- HttpParser.ResponseHandler ----

    @Override
    public void startResponse(HttpVersion version, int status, String reason) {
        this.status = status;
    }

    @Override
    public void parsedHeader(HttpField field) {
        answer.add(field);
    }

    @Override
    public boolean headerComplete() {
        headerComplete = true;
        // A refusal is known from its status; its body is not read.
        return status != 101;
    }

    @Override
    public boolean content(ByteBuffer content) {
        return false;
    }

    @Override
    public boolean contentComplete() {
        return false;
    }

    @Override
    public boolean messageComplete() {
        messageComplete = true;
        // Stop here: what follows the answer is WebSocket frames.
        return true;
    }

    @Override
    public void earlyEOF() {
        fail(new EOFException("upstream closed the connection during the upgrade"));
    }

    @Override
    public void badMessage(HttpException failure) {
        fail(new IOException("upstream answered the upgrade with a malformed response: " + failure.getReason()));
    }
}
