package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.util.BufferUtil;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The relay endpoint on a real loopback socket: which fills it answers without a syscall, and that
 * it never loses or reorders a byte doing so.
 */
@Timeout(30)
class RelayEndPointTest {

    private ServerSocketChannel server;
    private SocketChannel peer;
    private SocketChannel local;
    private Selector selector;
    private ScheduledExecutorScheduler scheduler;
    private LingeringConnector.RelayEndPoint endPoint;

    @BeforeEach
    void connect() throws Exception {
        server = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        peer = SocketChannel.open(server.getLocalAddress());
        local = server.accept();
        local.configureBlocking(false);
        selector = Selector.open();
        final SelectionKey key = local.register(selector, 0);
        scheduler = new ScheduledExecutorScheduler();
        scheduler.start();
        endPoint = new LingeringConnector.RelayEndPoint(local, null, key, scheduler);
    }

    @AfterEach
    void close() throws Exception {
        scheduler.stop();
        selector.close();
        local.close();
        peer.close();
        server.close();
    }

    @Test
    void readsAfterAShortReadUntilSuchReadsComeBackEmptyThenSkipsThem() throws Exception {
        final ByteBuffer buffer = BufferUtil.allocate(1024);
        send("one");
        assertThat(fillAndTake(buffer)).isEqualTo("one");
        // The probe: a real read, which finds the socket drained.
        assertThat(endPoint.fill(buffer)).isZero();

        send("two");
        assertThat(fillAndTake(buffer)).isEqualTo("two");
        send("three");
        // Skipped: bytes that came after the short read wait for the selector, which reports them.
        assertThat(endPoint.fill(buffer)).isZero();
        assertThat(fillAndTake(buffer)).isEqualTo("three");
    }

    @Test
    void wherePeerKeepsSendingItKeepsReading() throws Exception {
        final ByteBuffer buffer = BufferUtil.allocate(1024);
        send("a");
        assertThat(fillAndTake(buffer)).isEqualTo("a");
        send("b");
        // The probe finds more: no skipping on this connection.
        assertThat(fillAndTake(buffer)).isEqualTo("b");
        send("c");
        assertThat(fillAndTake(buffer)).isEqualTo("c");
    }

    @Test
    void aReadThatFillsTheBufferIsNeverTakenAsDrained() throws Exception {
        final ByteBuffer buffer = BufferUtil.allocate(4);
        send("x");
        assertThat(fillAndTake(buffer)).isEqualTo("x");
        assertThat(endPoint.fill(buffer)).isZero(); // probe: skipping from now on
        send("12345678");
        assertThat(fillAndTake(buffer)).isEqualTo("1234");
        assertThat(fillAndTake(buffer)).isEqualTo("5678");
    }

    @Test
    void whileSkippingItStillLooksAfterEveryThirtySecondShortRead() throws Exception {
        final ByteBuffer buffer = BufferUtil.allocate(1024);
        send("p");
        assertThat(fillAndTake(buffer)).isEqualTo("p");
        assertThat(endPoint.fill(buffer)).isZero(); // probe: empty, skipping from now on
        for (int shortReads = 1; shortReads < 32; shortReads++) {
            endPoint.onSelected();
            send("m");
            assertThat(fillAndTake(buffer)).isEqualTo("m");
            assertThat(endPoint.fill(buffer))
                    .as("fill after short read %d", shortReads)
                    .isZero();
        }
        endPoint.onSelected();
        send("m");
        assertThat(fillAndTake(buffer)).isEqualTo("m");
        send("n");
        // The 32nd short read: the next fill looks, finds more, and the connection stops skipping.
        assertThat(fillAndTake(buffer)).isEqualTo("n");
        send("o");
        assertThat(fillAndTake(buffer)).isEqualTo("o");
    }

    private void send(String text) throws Exception {
        peer.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII)));
        // Wait until the bytes are readable here, as the selector would.
        final SelectionKey key = local.keyFor(selector);
        key.interestOps(SelectionKey.OP_READ);
        assertThat(selector.select(5_000)).isEqualTo(1);
        selector.selectedKeys().clear();
        key.interestOps(0);
    }

    private String fillAndTake(ByteBuffer buffer) throws Exception {
        final int filled = endPoint.fill(buffer);
        assertThat(filled).isPositive();
        return take(buffer);
    }

    private static String take(ByteBuffer buffer) {
        final String text = BufferUtil.toString(buffer, StandardCharsets.US_ASCII);
        BufferUtil.clear(buffer);
        return text;
    }
}
