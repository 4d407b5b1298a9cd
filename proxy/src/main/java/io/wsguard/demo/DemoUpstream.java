package io.wsguard.demo;

import io.wsguard.admin.InlineCsp;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpMethod;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.api.StatusCode;
import org.eclipse.jetty.websocket.server.WebSocketUpgradeHandler;

/**
 * The chat room {@code wsguard demo} puts behind the proxy: {@code GET /} serves a self-contained
 * chat page and {@code /chat} is a WebSocket that broadcasts every text message to everyone in the
 * room, the sender included.
 *
 * <p>The page is served here, not by the proxy (which only relays WebSockets), and its script
 * connects to the proxy: {@code ?ws=wss://localhost:8443/chat} by default.
 *
 * <p>Bounded everywhere, as an upstream behind wsguard should be anyway: messages up to
 * {@link #MAX_MESSAGE} bytes, at most {@link #MAX_MEMBERS} members, and at most
 * {@link #MAX_PENDING_SENDS} messages waiting to be written to one member; a member that falls
 * further behind is closed (1013, try again later) rather than buffered for.
 */
public final class DemoUpstream implements AutoCloseable {

    /** The default port; {@code policies/demo.yaml} routes {@code /chat} to it. */
    public static final int DEFAULT_PORT = 9000;
    /** Largest text message accepted, in bytes; the demo policy's {@code maxSize} is the same. */
    public static final int MAX_MESSAGE = 16 * 1024;
    /** Members in the room at once; more are refused with 503. */
    public static final int MAX_MEMBERS = 256;
    /** Messages queued toward one member before it is dropped as too slow. */
    public static final int MAX_PENDING_SENDS = 64;

    private static final String PAGE = "chat.html";
    private static final int TRY_AGAIN_LATER = 1013;

    private final Server server;
    private final ServerConnector connector;
    private final Set<Member> members = ConcurrentHashMap.newKeySet();
    private final AtomicLong received = new AtomicLong();
    private final Consumer<String> log;
    private final byte[] page;
    private final String contentSecurityPolicy;

    /**
     * A room on {@code 127.0.0.1:port} ({@code 0}: any free port), not started yet.
     *
     * @param log receives one line per message and per member dropped; never the message text
     */
    public DemoUpstream(int port, Consumer<String> log) {
        this.log = log;
        final String html = loadPage();
        this.page = html.getBytes(StandardCharsets.UTF_8);
        this.contentSecurityPolicy = "default-src 'none'; "
                + "script-src " + InlineCsp.hashOf(html, "<script>", "</script>") + "; "
                + "style-src " + InlineCsp.hashOf(html, "<style>", "</style>") + "; "
                + "connect-src ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        final QueuedThreadPool threads = new QueuedThreadPool(32, 4);
        threads.setName("demo-upstream");
        server = new Server(threads);
        connector = new ServerConnector(server, 1, 1);
        connector.setHost("127.0.0.1");
        connector.setPort(port);
        server.addConnector(connector);
        server.setStopTimeout(2_000);
        final WebSocketUpgradeHandler upgrades = WebSocketUpgradeHandler.from(server, container -> {
            container.setMaxTextMessageSize(MAX_MESSAGE);
            container.setMaxBinaryMessageSize(MAX_MESSAGE);
            container.setIdleTimeout(Duration.ofMinutes(10));
            // Safety net under MAX_PENDING_SENDS: Jetty fails sends beyond it instead of queueing.
            container.setMaxOutgoingFrames(MAX_PENDING_SENDS * 2);
            container.addMapping("/chat", (request, response, callback) -> {
                if (members.size() >= MAX_MEMBERS) {
                    Response.writeError(
                            request, response, callback, HttpStatus.SERVICE_UNAVAILABLE_503, "room is full");
                    return null;
                }
                return new Member();
            });
        });
        upgrades.setHandler(new PageHandler());
        server.setHandler(upgrades);
    }

    /** Starts listening; a port in use fails with an exception whose cause is a {@link java.net.BindException}. */
    public void start() throws Exception {
        try {
            server.start();
        } catch (Exception e) {
            server.setStopTimeout(0); // nothing to drain: it never served
            server.stop();
            throw e;
        }
    }

    /** The port it listens on, e.g. the one picked for port 0. */
    public int port() {
        return connector.getLocalPort();
    }

    /** {@code http://localhost:PORT/}: the chat page. */
    public String pageUrl() {
        return "http://localhost:" + port() + "/";
    }

    /** Text messages received so far, from all members. */
    public long received() {
        return received.get();
    }

    /** Members in the room now. */
    public int members() {
        return members.size();
    }

    @Override
    public void close() {
        for (Member member : members) {
            member.leave(StatusCode.SHUTDOWN, "demo stopping");
        }
        try {
            server.stop();
        } catch (Exception e) {
            log.accept("demo upstream: stop failed: " + e);
        }
    }

    private void broadcast(String text) {
        for (Member member : members) {
            member.send(text);
        }
    }

    /** One WebSocket in the room. Public: Jetty calls endpoint methods through method handles. */
    public final class Member extends Session.Listener.AbstractAutoDemanding {

        private final AtomicInteger pending = new AtomicInteger();

        @Override
        public void onWebSocketOpen(Session session) {
            super.onWebSocketOpen(session);
            members.add(this);
        }

        @Override
        public void onWebSocketText(String message) {
            final long n = received.incrementAndGet();
            log.accept("demo upstream: message #" + n + " (" + message.getBytes(StandardCharsets.UTF_8).length
                    + " bytes) to " + members.size() + " member(s)");
            broadcast(message);
        }

        @Override
        public void onWebSocketClose(int statusCode, String reason, Callback callback) {
            members.remove(this);
            callback.succeed();
        }

        @Override
        public void onWebSocketError(Throwable cause) {
            members.remove(this);
        }

        void send(String text) {
            final Session session = getSession();
            if (session == null || !session.isOpen()) {
                return;
            }
            if (pending.incrementAndGet() > MAX_PENDING_SENDS) {
                log.accept("demo upstream: dropping a member that is " + MAX_PENDING_SENDS + " messages behind");
                leave(TRY_AGAIN_LATER, "too slow");
                return;
            }
            session.sendText(
                    text,
                    Callback.from(pending::decrementAndGet, failure -> leave(StatusCode.SERVER_ERROR, "send failed")));
        }

        void leave(int code, String reason) {
            if (members.remove(this)) {
                final Session session = getSession();
                if (session != null) {
                    session.close(code, reason, Callback.NOOP);
                }
            }
        }
    }

    /** {@code GET /}: the chat page; everything else that is not an upgrade: 404. */
    private final class PageHandler extends Handler.Abstract.NonBlocking {
        @Override
        public boolean handle(Request request, Response response, org.eclipse.jetty.util.Callback callback) {
            final String method = request.getMethod();
            if (!"/".equals(Request.getPathInContext(request))) {
                Response.writeError(request, response, callback, HttpStatus.NOT_FOUND_404);
                return true;
            }
            if (!HttpMethod.GET.is(method) && !HttpMethod.HEAD.is(method)) {
                response.getHeaders().put(HttpHeader.ALLOW, "GET, HEAD");
                Response.writeError(request, response, callback, HttpStatus.METHOD_NOT_ALLOWED_405);
                return true;
            }
            response.setStatus(HttpStatus.OK_200);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/html;charset=utf-8");
            response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
            response.getHeaders().put("Content-Security-Policy", contentSecurityPolicy);
            response.getHeaders().put("X-Content-Type-Options", "nosniff");
            response.getHeaders().put("Referrer-Policy", "no-referrer");
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, page.length);
            if (HttpMethod.HEAD.is(method)) {
                response.write(true, null, callback);
            } else {
                response.write(true, ByteBuffer.wrap(page), callback);
            }
            return true;
        }
    }

    private static String loadPage() {
        try (InputStream in = DemoUpstream.class.getResourceAsStream(PAGE)) {
            if (in == null) {
                throw new IllegalStateException(PAGE + " is missing from the class path next to " + DemoUpstream.class);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
