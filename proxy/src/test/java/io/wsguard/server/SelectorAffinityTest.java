package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.InetSocketAddress;
import java.nio.channels.SelectableChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.ManagedSelector;
import org.eclipse.jetty.io.SocketChannelEndPoint;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Both sockets of a proxied connection are watched by one selector thread: the one that accepted
 * the client's socket also watches the upstream socket opened for it, so relaying a connection never
 * hands over between threads; connections still spread over all of the listener's selectors.
 */
@Timeout(60)
class SelectorAffinityTest {

    @TempDir
    Path dir;

    private UpstreamServer upstream;
    private RunningProxy proxy;
    private TestClient client;

    @BeforeEach
    void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: echo
                  match: { path: /echo }
                  upstream: { targets: [%s] }
                  auth: none
                """.formatted(upstream.uri("/echo"))));
        client = new TestClient();
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    @Test
    void eachUpstreamSocketIsWatchedByItsClientSocketsSelector() throws Exception {
        final int connections = 8;
        final List<TestClient.Recorder> open = new ArrayList<>();
        for (int i = 0; i < connections; i++) {
            final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
            ws.send("hello " + i);
            assertThat(ws.next()).isEqualTo("hello " + i);
            open.add(ws);
        }

        final ServerConnector connector = proxy.server().connector(0);
        final int upstreamPort = upstream.uri("/echo").getPort();
        final List<ManagedSelector> selectors =
                new ArrayList<>(connector.getSelectorManager().getBeans(ManagedSelector.class));
        assertThat(selectors).hasSize(LingeringConnector.SELECTORS);
        int clientSockets = 0;
        int upstreamSockets = 0;
        for (ManagedSelector selector : selectors) {
            int clients = 0;
            int upstreams = 0;
            for (EndPoint endPoint : connector.getConnectedEndPoints()) {
                final SelectableChannel channel = ((SocketChannelEndPoint) endPoint).getChannel();
                if (channel.keyFor(selector.getSelector()) == null) {
                    continue;
                }
                if (((InetSocketAddress) endPoint.getRemoteSocketAddress()).getPort() == upstreamPort) {
                    upstreams++;
                } else {
                    clients++;
                }
            }
            assertThat(upstreams)
                    .as("upstream sockets on the selector with %d client sockets", clients)
                    .isEqualTo(clients);
            clientSockets += clients;
            upstreamSockets += upstreams;
        }
        assertThat(clientSockets).isEqualTo(connections);
        assertThat(upstreamSockets).isEqualTo(connections);
        for (TestClient.Recorder ws : open) {
            ws.session.close();
        }
    }
}
