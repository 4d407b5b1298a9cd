package io.wsguard.relay;

import java.nio.channels.SocketChannel;
import java.util.Map;

/**
 * The selector thread that watches a client's socket, offered to its upstream socket.
 *
 * <p>Each side reads on its selector thread and writes what it read to the other side's socket. With
 * the two sockets of a connection on two selector threads, both threads take the same connection's
 * locks (the frame flusher, the demand state, TLS), and every contended release wakes the other
 * thread. With both sockets on one thread, as NGINX keeps both of a connection's sockets in one
 * worker, a connection's relaying never leaves that thread; connections still spread over all of
 * the listener's selector threads.
 */
public interface SelectorAffinity {

    /**
     * Registers an upstream socket on this selector: {@code connected}, or with a non-blocking
     * connect pending. {@code context} is a {@link org.eclipse.jetty.io.ClientConnector}'s: its
     * connection factory makes the connection, its connection promise learns the outcome.
     */
    void register(SocketChannel channel, boolean connected, Map<String, Object> context);
}
