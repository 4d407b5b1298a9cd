package io.wsguard.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Iterator;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes client sockets gracefully: output shut down first (our CLOSE frame and a FIN go out), then
 * input read and discarded until the peer closes, for at most a short time and a bounded number of
 * bytes.
 *
 * <p>Why: Jetty closes the TCP connection right after sending a CLOSE with a code other than 1000,
 * 1005 or ≥3000 (1001, 1008, 1009, 1014…). On Linux, closing a socket with unread input sends a
 * reset, and the peer's kernel then drops whatever it had not read yet, our CLOSE frame included,
 * so a client that is still sending sees 1006 instead of the code (README, Policy file). Draining first avoids
 * the reset. One thread and one selector serve every lingering socket.
 */
final class Linger extends AbstractLifeCycle {

    private static final Logger LOG = LoggerFactory.getLogger(Linger.class);

    private final long lingerNanos;
    private final long maxDrainBytes;
    private final Queue<SocketChannel> incoming = new ConcurrentLinkedQueue<>();
    private final AtomicInteger lingering = new AtomicInteger();
    private volatile Selector selector;
    private Thread thread;

    Linger(Duration linger, long maxDrainBytes) {
        this.lingerNanos = linger.toNanos();
        this.maxDrainBytes = maxDrainBytes;
    }

    /** How many sockets are being drained now. */
    int lingering() {
        return lingering.get();
    }

    @Override
    protected void doStart() throws Exception {
        selector = Selector.open();
        thread = new Thread(this::run, "wsguard-linger");
        thread.setDaemon(true);
        thread.start();
    }

    @Override
    protected void doStop() throws Exception {
        final Selector s = selector;
        selector = null;
        if (s != null) {
            s.close();
        }
        if (thread != null) {
            thread.join(2000);
        }
        SocketChannel channel;
        while ((channel = incoming.poll()) != null) {
            closeQuietly(channel);
        }
    }

    /**
     * Takes over a socket whose endpoint Jetty is closing. Never blocks; the socket is closed by the
     * linger thread (or at once when lingering is not running).
     */
    void close(SocketChannel channel) {
        final Selector s = selector;
        if (s == null || !channel.isOpen()) {
            closeQuietly(channel);
            return;
        }
        try {
            channel.shutdownOutput();
        } catch (IOException e) {
            closeQuietly(channel);
            return;
        }
        incoming.add(channel);
        s.wakeup();
    }

    private void run() {
        final ByteBuffer scratch = ByteBuffer.allocateDirect(16 * 1024);
        while (true) {
            final Selector s = selector;
            if (s == null) {
                return;
            }
            try {
                s.select(100);
                SocketChannel channel;
                while ((channel = incoming.poll()) != null) {
                    try {
                        channel.configureBlocking(false);
                        channel.register(s, SelectionKey.OP_READ, new Drain(System.nanoTime() + lingerNanos));
                        lingering.incrementAndGet();
                    } catch (IOException | RuntimeException e) {
                        closeQuietly(channel);
                    }
                }
                final Iterator<SelectionKey> ready = s.selectedKeys().iterator();
                while (ready.hasNext()) {
                    final SelectionKey key = ready.next();
                    ready.remove();
                    drain(key, scratch);
                }
                final long now = System.nanoTime();
                for (SelectionKey key : s.keys()) {
                    if (key.isValid() && now - ((Drain) key.attachment()).deadline > 0) {
                        finish(key);
                    }
                }
            } catch (ClosedSelectorException e) {
                return;
            } catch (IOException | RuntimeException e) {
                LOG.warn("linger loop: {}", e.toString());
            }
        }
    }

    private void drain(SelectionKey key, ByteBuffer scratch) {
        final SocketChannel channel = (SocketChannel) key.channel();
        final Drain drain = (Drain) key.attachment();
        try {
            int read;
            do {
                scratch.clear();
                read = channel.read(scratch);
                if (read > 0) {
                    drain.bytes += read;
                }
            } while (read > 0 && drain.bytes < maxDrainBytes);
            if (read < 0 || drain.bytes >= maxDrainBytes) {
                finish(key);
            }
        } catch (IOException e) {
            finish(key);
        }
    }

    private void finish(SelectionKey key) {
        key.cancel();
        lingering.decrementAndGet();
        closeQuietly((SocketChannel) key.channel());
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // Nothing left to do for a socket we are throwing away.
        }
    }

    private static final class Drain {
        final long deadline;
        long bytes;

        Drain(long deadline) {
            this.deadline = deadline;
        }
    }
}
