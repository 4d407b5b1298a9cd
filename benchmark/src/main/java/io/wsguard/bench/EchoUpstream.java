package io.wsguard.bench;

import java.time.Duration;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.CoreSession;
import org.eclipse.jetty.websocket.core.Frame;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.OpCode;
import org.eclipse.jetty.websocket.core.server.WebSocketUpgradeHandler;

/**
 * The benchmark's upstream: a WebSocket echo server on {@code ws://HOST:PORT/echo}, run as its own
 * process so that its CPU is not charged to the proxy or the load client.
 *
 * <p>It echoes at the frame level with Jetty's core {@link FrameHandler} and explicit demand: no
 * message reassembly and no copy, which makes it cheaper than any proxy in front of it, so the
 * proxy is what the benchmark measures.
 */
public final class EchoUpstream {

    private EchoUpstream() {}

    /**
     * {@code --port 19000 [--host 127.0.0.1] [--tls-port 19443 --keystore F.p12 --keystore-password P]}.
     * The TLS listener serves the direct wss leg, so that wss through a proxy can be compared with
     * wss without one.
     */
    public static void main(String[] args) throws Exception {
        final Args a = Args.parse(args);
        final Server server = start(
                a.string("host", "127.0.0.1"),
                a.integer("port", 19000),
                a.integer("tls-port", -1),
                a.string("keystore", null),
                a.string("keystore-password", ""));
        for (var connector : server.getConnectors()) {
            System.out.println(
                    "echo upstream listening on port " + ((ServerConnector) connector).getLocalPort() + ", path /echo");
        }
        server.join();
    }

    /** Starts the echo server; port 0 picks a free port; {@code tlsPort < 0} means no TLS listener. */
    public static Server start(String host, int port, int tlsPort, String keyStore, String keyStorePassword)
            throws Exception {
        final QueuedThreadPool threads = new QueuedThreadPool(200, 8);
        threads.setName("echo");
        final Server server = new Server(threads);
        final ServerConnector connector = new ServerConnector(server, 1, 1);
        connector.setHost(host);
        connector.setPort(port);
        // The idle benchmark opens thousands of connections at once.
        connector.setAcceptQueueSize(4096);
        server.addConnector(connector);
        if (tlsPort >= 0) {
            if (keyStore == null) {
                throw new IllegalArgumentException("--keystore: missing (expected: a PKCS#12 file with --tls-port)");
            }
            final SslContextFactory.Server tls = new SslContextFactory.Server();
            tls.setKeyStorePath(keyStore);
            tls.setKeyStoreType("PKCS12");
            tls.setKeyStorePassword(keyStorePassword);
            final ServerConnector tlsConnector = new ServerConnector(server, 1, 1, tls);
            tlsConnector.setHost(host);
            tlsConnector.setPort(tlsPort);
            tlsConnector.setAcceptQueueSize(4096);
            server.addConnector(tlsConnector);
        }
        final WebSocketUpgradeHandler upgrade = new WebSocketUpgradeHandler();
        upgrade.getConfiguration().setMaxFrameSize(16L << 20);
        upgrade.getConfiguration().setMaxBinaryMessageSize(16L << 20);
        upgrade.getConfiguration().setMaxTextMessageSize(16L << 20);
        // Idle connections are held for the RSS measurement; no timeout should cut them.
        upgrade.getConfiguration().setIdleTimeout(Duration.ofHours(1));
        upgrade.addMapping("/echo", (request, response, callback) -> new Echo());
        server.setHandler(upgrade);
        server.start();
        return server;
    }

    /**
     * Echoes every data frame back as it came (same opcode, same FIN bit), one frame at a time: the
     * next frame is demanded only once the echo is written, so a slow client slows its own echo.
     */
    public static final class Echo implements FrameHandler {

        private CoreSession session;

        @Override
        public void onOpen(CoreSession coreSession, Callback callback) {
            this.session = coreSession;
            callback.succeeded();
            coreSession.demand();
        }

        @Override
        public void onFrame(Frame frame, Callback callback) {
            final byte opCode = frame.getOpCode();
            if (opCode == OpCode.TEXT || opCode == OpCode.BINARY || opCode == OpCode.CONTINUATION) {
                // The payload belongs to Jetty until callback completes: complete it only after
                // the echo has been written. A new Frame so that the client's mask is not copied.
                final Frame echo = new Frame(opCode, frame.isFin(), frame.getPayload());
                session.sendFrame(
                        echo,
                        Callback.from(
                                () -> {
                                    callback.succeeded();
                                    session.demand();
                                },
                                callback::failed),
                        false);
                return;
            }
            // PING is answered and CLOSE handled by the core session once this callback completes.
            callback.succeeded();
            session.demand();
        }

        @Override
        public void onError(Throwable cause, Callback callback) {
            callback.succeeded();
        }

        @Override
        public void onClosed(CloseStatus closeStatus, Callback callback) {
            callback.succeeded();
        }
    }
}
