package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.demo.DevCerts;
import io.wsguard.demo.DevCerts.KeyFormat;
import io.wsguard.demo.DevCerts.KeyType;
import io.wsguard.policy.TlsPolicy;
import io.wsguard.policy.UpstreamPolicy;
import io.wsguard.testing.UpstreamServer;
import io.wsguard.tls.ServerTls;
import io.wsguard.tls.UpstreamTls;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.io.AbstractEndPoint;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Invocable;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.Configuration;
import org.eclipse.jetty.websocket.core.CoreSession;
import org.eclipse.jetty.websocket.core.Frame;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.OpCode;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The upstream side's reads leave Jetty's pool dispatch only after the upgrade, over {@code ws://}
 * and {@code wss://}, against a real upstream: what the selector sees registered for the socket is
 * the invocation type it dispatches by.
 */
@Timeout(60)
class InlineReadsConnectorTest {

    @TempDir
    Path dir;

    private final QueuedThreadPool threads = new QueuedThreadPool();
    private final ScheduledExecutorScheduler scheduler = new ScheduledExecutorScheduler();
    private UpstreamServer upstream;
    private UpstreamConnector connector;

    @BeforeEach
    void startThreads() throws Exception {
        threads.start();
        scheduler.start();
    }

    @AfterEach
    void stop() throws Exception {
        if (connector != null) {
            connector.stop();
        }
        if (upstream != null) {
            upstream.close();
        }
        scheduler.stop();
        threads.stop();
    }

    @Test
    void plainUpstreamReadsRunOnTheSelectorOnceUpgraded() throws Exception {
        upstream = new UpstreamServer();

        assertEchoesAndReadsInline(null, Optional.empty());
    }

    @Test
    void tlsUpstreamReadsRunOnTheSelectorOnceUpgraded() throws Exception {
        final DevCerts.Authority ca = DevCerts.authority(dir, "upstream-ca");
        final DevCerts.Issued cert = ca.issue(dir, "upstream", List.of("127.0.0.1"), KeyType.EC, KeyFormat.PKCS8);
        upstream = new UpstreamServer(ServerTls.create(new TlsPolicy(
                List.of(new TlsPolicy.KeyPairPolicy(cert.certificate(), cert.privateKey())), Optional.empty(),
                Optional.empty(), List.of("TLSv1.3", "TLSv1.2"), TlsPolicy.ClientAuth.NONE, Optional.empty())));

        final Optional<UpstreamPolicy.UpstreamTlsPolicy> tls = Optional.of(
                new UpstreamPolicy.UpstreamTlsPolicy(Optional.of(ca.certificatePath()), true));
        assertEchoesAndReadsInline(UpstreamTls.create(tls), tls);
    }

    private void assertEchoesAndReadsInline(SslContextFactory.Client ssl, Optional<UpstreamPolicy.UpstreamTlsPolicy> tls)
            throws Exception {
        final URI target = upstream.uri("/echo");
        connector = new UpstreamConnector(new UpstreamPolicy(List.of(target), UpstreamPolicy.Balance.ROUND_ROBIN,
                Duration.ofSeconds(5), tls, new UpstreamPolicy.HeadersPolicy(List.of(), Map.of(), List.of())),
                ssl, threads, scheduler);
        connector.start();
        final Recorder recorder = new Recorder();

        final CoreSession session = connector.connect(new UpstreamConnector.Request("", null, HttpFields.EMPTY, List.of(),
                List.of(), new Configuration.ConfigurationCustomizer()), recorder).get(10, TimeUnit.SECONDS).session();
        session.sendFrame(new Frame(OpCode.TEXT, "ping me"), Callback.NOOP, false);

        assertThat(recorder.texts.poll(10, TimeUnit.SECONDS)).isEqualTo("ping me");
        final AbstractEndPoint network = (AbstractEndPoint) networkEndPoint(((WebSocketCoreSession) session).getConnection().getEndPoint());
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                assertThat(network.getFillInterest().getCallbackInvocationType()).isEqualTo(Invocable.InvocationType.NON_BLOCKING));
        session.close(CloseStatus.NORMAL, "done", Callback.NOOP);
    }

    /** The socket's endpoint, below TLS if there is TLS: the one the selector dispatches for. */
    private static EndPoint networkEndPoint(EndPoint endPoint) {
        EndPoint current = endPoint;
        while (current instanceof EndPoint.Wrapper wrapper) {
            current = wrapper.unwrap();
        }
        return current;
    }

    /** Records text frames and asks for the next one as soon as it has one. */
    private static final class Recorder implements FrameHandler {
        final BlockingQueue<String> texts = new LinkedBlockingQueue<>();
        private volatile CoreSession session;

        @Override
        public void onOpen(CoreSession coreSession, Callback callback) {
            session = coreSession;
            callback.succeeded();
            coreSession.demand();
        }

        @Override
        public void onFrame(Frame frame, Callback callback) {
            if (frame.getOpCode() == OpCode.TEXT) {
                texts.add(frame.getPayloadAsUTF8());
            }
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
