package io.wsguard.server;

import java.io.IOException;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import org.eclipse.jetty.io.ManagedSelector;
import org.eclipse.jetty.io.SocketChannelEndPoint;
import org.eclipse.jetty.server.ConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.Scheduler;

/** A {@link ServerConnector} whose sockets close through {@link Linger}: a CLOSE frame is never lost to a reset. */
final class LingeringConnector extends ServerConnector {

    private final Linger linger;

    LingeringConnector(Server server, Linger linger, ConnectionFactory... factories) {
        super(server, factories);
        this.linger = linger;
    }

    @Override
    protected SocketChannelEndPoint newEndPoint(SocketChannel channel, ManagedSelector selector, SelectionKey key)
            throws IOException {
        final LingeringEndPoint endPoint = new LingeringEndPoint(channel, selector, key, getScheduler(), linger);
        endPoint.setIdleTimeout(getIdleTimeout());
        return endPoint;
    }

    private static final class LingeringEndPoint extends SocketChannelEndPoint {
        private final SelectionKey key;
        private final Linger linger;
        private volatile boolean handedOver;

        LingeringEndPoint(SocketChannel channel, ManagedSelector selector, SelectionKey key, Scheduler scheduler, Linger linger) {
            super(channel, selector, key, scheduler);
            this.key = key;
            this.linger = linger;
        }

        @Override
        public boolean isOpen() {
            // Closed as far as Jetty is concerned once the linger thread owns the socket.
            return !handedOver && super.isOpen();
        }

        @Override
        public void doClose() {
            handedOver = true;
            // Jetty's selector must stop watching the socket before the linger thread owns it.
            key.cancel();
            linger.close(getChannel());
        }
    }
}
