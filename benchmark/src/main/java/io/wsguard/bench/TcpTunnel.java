package io.wsguard.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Iterator;

/**
 * The JVM's floor for relaying: a TCP tunnel that copies bytes between each accepted socket and a
 * new socket to the upstream, on one selector thread, with plain NIO and no WebSocket framing at
 * all (the upgrade and every frame pass through as bytes). No proxy written in Java can relay for
 * less CPU than this; the benchmark's {@code tunnel} leg measures it next to NGINX and wsguard, so
 * that the share of a gap that is the JVM's and the share that is wsguard's can be told apart.
 *
 * <p>Each direction has one 32 KiB buffer: a direction whose buffer is not empty stops reading
 * until its bytes are written (back-pressure, as in the proxy). Not a product: no TLS, no limits.
 *
 * <pre>tunnel --port 38080 --upstream-port 19000 [--host 127.0.0.1]</pre>
 */
public final class TcpTunnel {

    private static final int BUFFER = 32 * 1024;

    private TcpTunnel() {}

    public static void main(String[] args) throws IOException {
        final Args a = Args.parse(args);
        final String host = a.string("host", "127.0.0.1");
        final InetSocketAddress upstream = new InetSocketAddress(host, a.integer("upstream-port", 19000));
        final Selector selector = Selector.open();
        final ServerSocketChannel server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress(host, a.integer("port", 38080)), 4096);
        server.configureBlocking(false);
        server.register(selector, SelectionKey.OP_ACCEPT);
        System.out.println("tcp tunnel listening on port " + server.socket().getLocalPort() + " -> " + upstream);
        while (true) {
            selector.select();
            final Iterator<SelectionKey> keys = selector.selectedKeys().iterator();
            while (keys.hasNext()) {
                final SelectionKey key = keys.next();
                keys.remove();
                try {
                    if (key.isAcceptable()) {
                        accept(server, selector, upstream);
                    } else if (key.attachment() instanceof Pipe pipe) {
                        pipe.ready(key);
                    }
                } catch (IOException | RuntimeException e) {
                    if (key.attachment() instanceof Pipe pipe) {
                        pipe.close();
                    }
                }
            }
        }
    }

    private static void accept(ServerSocketChannel server, Selector selector, InetSocketAddress upstream)
            throws IOException {
        final SocketChannel client = server.accept();
        if (client == null) {
            return;
        }
        // A blocking connect on loopback: the tunnel is a measuring tool, not a proxy.
        final SocketChannel up = SocketChannel.open(upstream);
        for (SocketChannel channel : new SocketChannel[] {client, up}) {
            channel.configureBlocking(false);
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        }
        final Pipe pipe = new Pipe(client, up);
        pipe.clientKey = client.register(selector, SelectionKey.OP_READ, pipe);
        pipe.upstreamKey = up.register(selector, SelectionKey.OP_READ, pipe);
    }

    /** Both directions of one tunnelled connection. */
    private static final class Pipe {
        private final SocketChannel client;
        private final SocketChannel upstream;
        private final ByteBuffer toUpstream = ByteBuffer.allocateDirect(BUFFER);
        private final ByteBuffer toClient = ByteBuffer.allocateDirect(BUFFER);
        SelectionKey clientKey;
        SelectionKey upstreamKey;

        Pipe(SocketChannel client, SocketChannel upstream) {
            this.client = client;
            this.upstream = upstream;
        }

        void ready(SelectionKey key) throws IOException {
            final boolean isClient = key == clientKey;
            if (key.isWritable()) {
                flush(
                        isClient ? toClient : toUpstream,
                        isClient ? clientKey : upstreamKey,
                        isClient ? upstreamKey : clientKey);
            }
            if (key.isValid() && key.isReadable()) {
                final ByteBuffer buffer = isClient ? toUpstream : toClient;
                final SocketChannel from = isClient ? client : upstream;
                if (from.read(buffer) < 0) {
                    close();
                    return;
                }
                buffer.flip();
                flush(buffer, isClient ? upstreamKey : clientKey, key);
            }
        }

        /**
         * Writes what {@code buffer} holds to {@code to}'s channel; reading from {@code from} waits until it is all
         * out.
         */
        private void flush(ByteBuffer buffer, SelectionKey to, SelectionKey from) throws IOException {
            ((SocketChannel) to.channel()).write(buffer);
            if (buffer.hasRemaining()) {
                to.interestOps(to.interestOps() | SelectionKey.OP_WRITE);
                from.interestOps(from.interestOps() & ~SelectionKey.OP_READ);
                return;
            }
            buffer.clear();
            if ((to.interestOps() & SelectionKey.OP_WRITE) != 0) {
                to.interestOps(to.interestOps() & ~SelectionKey.OP_WRITE);
            }
            if ((from.interestOps() & SelectionKey.OP_READ) == 0) {
                from.interestOps(from.interestOps() | SelectionKey.OP_READ);
            }
        }

        void close() {
            clientKey.cancel();
            upstreamKey.cancel();
            try {
                client.close();
            } catch (IOException ignored) {
                // Closing a socket the peer already reset.
            }
            try {
                upstream.close();
            } catch (IOException ignored) {
                // Same.
            }
        }
    }
}
