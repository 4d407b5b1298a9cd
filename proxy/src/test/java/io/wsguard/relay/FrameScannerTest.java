package io.wsguard.relay;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.eclipse.jetty.websocket.core.exception.BadPayloadException;
import org.eclipse.jetty.websocket.core.exception.MessageTooLargeException;
import org.eclipse.jetty.websocket.core.exception.ProtocolException;
import org.junit.jupiter.api.Test;

/**
 * The frame pump's scanner on its own: frames cut at every byte boundary, many frames in one buffer,
 * re-masking, counting, limits, and each of Jetty's refusals with the bytes before it passed and the
 * refused frame not.
 */
class FrameScannerTest {

    private static final int TEXT = 0x1;
    private static final int BINARY = 0x2;
    private static final int CONTINUATION = 0x0;
    private static final int CLOSE = 0x8;
    private static final int PING = 0x9;
    private static final int PONG = 0xA;

    /** One frame as a test writes it and reads it back. */
    static final class Frame {
        final boolean fin;
        final int opcode;
        final byte[] payload;

        Frame(boolean fin, int opcode, byte[] payload) {
            this.fin = fin;
            this.opcode = opcode;
            this.payload = payload;
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof Frame f
                    && f.fin == fin
                    && f.opcode == opcode
                    && java.util.Arrays.equals(f.payload, payload);
        }

        @Override
        public int hashCode() {
            return java.util.Arrays.hashCode(payload) * 31 + opcode;
        }

        @Override
        public String toString() {
            return (fin ? "FIN " : "") + opcode + " " + payload.length + "B";
        }
    }

    /** Counts what the scanner reports, and refuses (enforces) every limit. */
    static final class Counted implements FrameScanner.Limits {
        final List<Long> messages = new ArrayList<>();
        final List<Boolean> overLimits = new ArrayList<>();
        boolean enforce = true;

        @Override
        public boolean overLimit(boolean fragments) {
            overLimits.add(fragments);
            return enforce;
        }

        @Override
        public void message(long size) {
            messages.add(size);
        }
    }

    /** A mixed stream: messages in one frame and in several, pings and pongs between fragments, every length form. */
    private static List<Frame> mixed(Random random) {
        final List<Frame> frames = new ArrayList<>();
        frames.add(new Frame(true, TEXT, bytes(random, 0)));
        frames.add(new Frame(true, BINARY, bytes(random, 125)));
        frames.add(new Frame(true, TEXT, bytes(random, 126)));
        frames.add(new Frame(false, BINARY, bytes(random, 7)));
        frames.add(new Frame(true, PING, bytes(random, 125)));
        frames.add(new Frame(false, CONTINUATION, bytes(random, 0)));
        frames.add(new Frame(true, PONG, bytes(random, 0)));
        frames.add(new Frame(true, CONTINUATION, bytes(random, 300)));
        frames.add(new Frame(true, BINARY, bytes(random, 70_000)));
        for (int i = 0; i < 50; i++) {
            frames.add(new Frame(true, TEXT, bytes(random, random.nextInt(200))));
        }
        return frames;
    }

    private static byte[] bytes(Random random, int length) {
        final byte[] bytes = new byte[length];
        random.nextBytes(bytes);
        return bytes;
    }

    /** The wire bytes of {@code frames}, masked with random keys ({@code masked}) or not. */
    private static byte[] wire(List<Frame> frames, boolean masked, Random random) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Frame frame : frames) {
            out.writeBytes(frame(frame.fin, 0, frame.opcode, frame.payload, masked ? random.nextInt() : null));
        }
        return out.toByteArray();
    }

    static byte[] frame(boolean fin, int rsv, int opcode, byte[] payload, Integer key) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write((fin ? 0x80 : 0) | rsv << 4 | opcode);
        final int mask = key != null ? 0x80 : 0;
        if (payload.length < 126) {
            out.write(mask | payload.length);
        } else if (payload.length < 65_536) {
            out.write(mask | 126);
            out.write(payload.length >>> 8);
            out.write(payload.length);
        } else {
            out.write(mask | 127);
            for (int shift = 56; shift >= 0; shift -= 8) {
                out.write((int) ((long) payload.length >>> shift));
            }
        }
        if (key != null) {
            for (int shift = 24; shift >= 0; shift -= 8) {
                out.write(key >>> shift);
            }
        }
        for (int i = 0; i < payload.length; i++) {
            out.write(key == null ? payload[i] : payload[i] ^ (key >>> (24 - 8 * (i & 3))));
        }
        return out.toByteArray();
    }

    /** Reads frames back, unmasking each with the key in its own header, and checks every masked one had a key. */
    private static List<Frame> read(byte[] wire, boolean masked, List<Integer> keys) {
        final List<Frame> frames = new ArrayList<>();
        final ByteBuffer in = ByteBuffer.wrap(wire);
        while (in.hasRemaining()) {
            final int b0 = in.get() & 0xFF;
            final int b1 = in.get() & 0xFF;
            assertThat((b1 & 0x80) != 0).as("masked").isEqualTo(masked);
            long length = b1 & 0x7F;
            if (length == 126) {
                length = in.getShort() & 0xFFFF;
            } else if (length == 127) {
                length = in.getLong();
            }
            final int key = masked ? in.getInt() : 0;
            if (masked) {
                keys.add(key);
            }
            final byte[] payload = new byte[(int) length];
            in.get(payload);
            for (int i = 0; i < payload.length; i++) {
                payload[i] ^= (byte) (key >>> (24 - 8 * (i & 3)));
            }
            frames.add(new Frame((b0 & 0x80) != 0, b0 & 0x0F, payload));
        }
        return frames;
    }

    /**
     * Feeds {@code wire} to {@code scanner} as the pump does, in pieces ending at {@code cuts}: appended to
     * what was left, scanned, and what passed is "written". Returns what was written.
     */
    private static byte[] pump(FrameScanner scanner, byte[] wire, int[] cuts, boolean direct) {
        final ByteBuffer buf = direct ? ByteBuffer.allocateDirect(wire.length) : ByteBuffer.allocate(wire.length);
        final ByteArrayOutputStream written = new ByteArrayOutputStream();
        int start = 0;
        int limit = 0;
        int previous = 0;
        for (int cut : cuts) {
            buf.put(limit, wire, previous, cut - previous);
            limit += cut - previous;
            previous = cut;
            final int end = scanner.scan(buf, start, limit);
            assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.MORE);
            assertThat(end).isBetween(start, limit);
            final byte[] out = new byte[end - start];
            buf.get(start, out);
            written.writeBytes(out);
            start = end;
        }
        assertThat(start).as("everything passed once the last byte came").isEqualTo(wire.length);
        return written.toByteArray();
    }

    @Test
    void clientFramesCutAtEveryByteBoundaryPassWholeReMaskedWithFreshKeys() {
        final Random random = new Random(18);
        final List<Frame> frames = mixed(random);
        final byte[] wire = wire(frames, true, random);
        for (int cut = 0; cut <= wire.length; cut += cut < 400 ? 1 : 997) {
            final Counted counted = new Counted();
            final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 1 << 20, 4096, counted);
            final byte[] out =
                    pump(scanner, wire, cut == 0 ? new int[] {wire.length} : new int[] {cut, wire.length}, false);
            final List<Integer> keys = new ArrayList<>();
            assertThat(read(out, true, keys)).as("cut at %d", cut).isEqualTo(frames);
            assertThat(counted.messages).hasSize(55);
        }
    }

    @Test
    void everyByteInAReadOfItsOwnAndAllInOneRead() {
        final Random random = new Random(6455);
        final List<Frame> frames = mixed(random);
        final byte[] wire = wire(frames, true, random);
        final int[] everyByte = new int[wire.length];
        for (int i = 0; i < wire.length; i++) {
            everyByte[i] = i + 1;
        }
        for (boolean direct : new boolean[] {false, true}) {
            for (int[] cuts : new int[][] {everyByte, {wire.length}}) {
                final Counted counted = new Counted();
                final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 1 << 20, 4096, counted);
                final List<Integer> keys = new ArrayList<>();
                assertThat(read(pump(scanner, wire, cuts, direct), true, keys)).isEqualTo(frames);
                assertThat(keys)
                        .as("a fresh key for each of the %d frames", frames.size())
                        .doesNotHaveDuplicates();
                // The messages, each counted once at its last frame, with its whole size.
                assertThat(counted.messages.subList(0, 4)).containsExactly(0L, 125L, 126L, 307L);
            }
        }
    }

    @Test
    void upstreamFramesPassUntouched() {
        final Random random = new Random(1);
        final List<Frame> frames = mixed(random);
        final byte[] wire = wire(frames, false, random);
        for (int cut = 1; cut < 300; cut++) {
            final FrameScanner scanner = new FrameScanner(false, null, Long.MAX_VALUE, Long.MAX_VALUE, new Counted());
            assertThat(pump(scanner, wire, new int[] {cut, wire.length}, cut % 2 == 0))
                    .isEqualTo(wire);
        }
    }

    @Test
    void anUnfinishedHeaderOrControlFrameWaitsAndAStreamingPayloadDoesNot() {
        final byte[] ping = frame(true, 0, PING, "are you there".getBytes(StandardCharsets.UTF_8), 0x01020304);
        final ByteBuffer buf = ByteBuffer.wrap(ping);
        final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 100, 100, new Counted());
        assertThat(scanner.scan(buf, 0, ping.length - 1))
                .as("a ping goes only whole")
                .isZero();
        assertThat(scanner.scan(buf, 0, ping.length)).isEqualTo(ping.length);

        final byte[] data = frame(true, 0, BINARY, new byte[50], 0x01020304);
        final FrameScanner streaming = new FrameScanner(true, new MaskKeys(), 100, 100, new Counted());
        assertThat(streaming.scan(ByteBuffer.wrap(data), 0, 5))
                .as("header without its key")
                .isZero();
        assertThat(streaming.scan(ByteBuffer.wrap(data), 0, 10))
                .as("header and 4 payload bytes")
                .isEqualTo(10);
    }

    @Test
    void jettysRefusalsStopAtTheRefusedFrameWithJettysCodeAndMessage() {
        final byte[] good = frame(true, 0, TEXT, "good".getBytes(StandardCharsets.UTF_8), 7);
        assertRefused(frame(true, 4, TEXT, new byte[1], 7), ProtocolException.class, "RSV1 not allowed to be set");
        assertRefused(frame(true, 2, TEXT, new byte[1], 7), ProtocolException.class, "RSV2 not allowed to be set");
        assertRefused(frame(true, 1, TEXT, new byte[1], 7), ProtocolException.class, "RSV3 not allowed to be set");
        assertRefused(
                frame(true, 4, PING, new byte[1], 7),
                ProtocolException.class,
                "Cannot have RSV1==true on Control frames");
        assertRefused(frame(true, 0, 0x3, new byte[1], 7), ProtocolException.class, "Unknown opcode: 3");
        assertRefused(frame(true, 0, 0xB, new byte[1], 7), ProtocolException.class, "Unknown opcode: 11");
        assertRefused(
                frame(true, 0, PING, new byte[126], 7),
                ProtocolException.class,
                "Invalid control frame payload length, [126] cannot exceed [125]");
        assertRefused(
                frame(false, 0, PING, new byte[1], 7), ProtocolException.class, "Fragmented Control Frame [PING]");
        assertRefused(
                frame(true, 0, CONTINUATION, new byte[1], 7), ProtocolException.class, "CONTINUATION after fin==true");
        assertRefused(
                frame(true, 0, TEXT, new byte[1], null),
                ProtocolException.class,
                "Client MUST mask all frames (RFC-6455: Section 5.1)");
        assertRefused(frame(true, 0, CLOSE, new byte[1], 7), ProtocolException.class, "Invalid CLOSE payload");
        assertRefused(frame(true, 0, CLOSE, new byte[] {0x03, (byte) 0xED}, 7), ProtocolException.class, null);
        assertRefused(
                frame(true, 0, CLOSE, new byte[] {0x03, (byte) 0xE8, (byte) 0xC3, 0x28}, 7),
                BadPayloadException.class,
                null);
        final byte[] topBit = {(byte) 0x82, (byte) (0x80 | 127), (byte) 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
        assertRefused(topBit, MessageTooLargeException.class, "Frame payload exceeded integer max value");
        final byte[] twoGiB = {(byte) 0x82, (byte) (0x80 | 127), 0, 0, 0, 0, (byte) 0x80, 0, 0, 0, 0, 0, 0, 0};
        assertRefused(twoGiB, MessageTooLargeException.class, "Frame payload exceeded integer max value");

        // A new message inside a fragmented one.
        final byte[] open = frame(false, 0, TEXT, new byte[1], 7);
        final byte[] wire = concat(good, open, frame(true, 0, BINARY, new byte[1], 7));
        final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 100, 100, new Counted());
        assertThat(scanner.scan(ByteBuffer.wrap(wire), 0, wire.length)).isEqualTo(good.length + open.length);
        assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.REFUSED);
        assertThat(scanner.refusal()).hasMessage("DataFrame before fin==true");
    }

    @Test
    void anUpstreamsMaskedFrameIsRefused() {
        final byte[] masked = frame(true, 0, TEXT, new byte[3], 9);
        final FrameScanner scanner = new FrameScanner(false, null, Long.MAX_VALUE, Long.MAX_VALUE, new Counted());
        assertThat(scanner.scan(ByteBuffer.wrap(masked), 0, masked.length)).isZero();
        assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.REFUSED);
        assertThat(scanner.refusal()).hasMessage("Server MUST NOT mask any frames (RFC-6455: Section 5.1)");
    }

    @Test
    void aCloseStopsTheScanWithItsStatusAndLength() {
        final byte[] close = frame(true, 0, CLOSE, new byte[] {0x0F, (byte) 0xA0, 'b', 'y', 'e'}, 0x7F00FF01);
        final byte[] wire = concat(frame(true, 0, TEXT, new byte[10], 3), close, frame(true, 0, TEXT, new byte[1], 3));
        final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 100, 100, new Counted());
        assertThat(scanner.scan(ByteBuffer.wrap(wire), 0, wire.length)).isEqualTo(16);
        assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.CLOSE);
        assertThat(scanner.closeStatus().getCode()).isEqualTo(4000);
        assertThat(scanner.closeStatus().getReason()).isEqualTo("bye");
        assertThat(scanner.closeFrameLength()).isEqualTo(close.length);
    }

    @Test
    void maxSizeAndMaxFragmentsAreCountedAcrossFragmentsAndStopBeforeTheFrameOverThem() {
        final byte[] first = frame(false, 0, TEXT, new byte[400], 1);
        final byte[] second = frame(false, 0, CONTINUATION, new byte[400], 2);
        final byte[] third = frame(true, 0, CONTINUATION, new byte[400], 3);
        final byte[] wire = concat(first, second, third);
        final Counted counted = new Counted();
        final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 1024, 100, counted);
        assertThat(scanner.scan(ByteBuffer.wrap(wire), 0, wire.length)).isEqualTo(first.length + second.length);
        assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.LIMIT);
        assertThat(counted.overLimits).containsExactly(false);

        final Counted fragments = new Counted();
        final FrameScanner byFrames = new FrameScanner(true, new MaskKeys(), 1 << 20, 2, fragments);
        assertThat(byFrames.scan(ByteBuffer.wrap(wire), 0, wire.length)).isEqualTo(first.length + second.length);
        assertThat(fragments.overLimits).containsExactly(true);

        // Monitor mode: reported once, and the message passes whole and is counted.
        final Counted monitored = new Counted();
        monitored.enforce = false;
        final FrameScanner reporting = new FrameScanner(true, new MaskKeys(), 1024, 100, monitored);
        assertThat(reporting.scan(ByteBuffer.wrap(wire), 0, wire.length)).isEqualTo(wire.length);
        assertThat(monitored.overLimits).containsExactly(false);
        assertThat(monitored.messages).containsExactly(1200L);
    }

    @Test
    void discardingWalksFramesToTheCloseAndCountsNothingButDiscards() {
        final byte[] wire = concat(
                frame(true, 0, TEXT, new byte[10], 3),
                frame(true, 0, PING, new byte[2], 3),
                frame(true, 0, BINARY, new byte[10], 3),
                frame(true, 0, CLOSE, new byte[] {0x03, (byte) 0xE8}, 3));
        final Counted counted = new Counted();
        final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 5, 100, counted);
        scanner.discard();
        assertThat(scanner.scan(ByteBuffer.wrap(wire), 0, wire.length)).isEqualTo(wire.length - 8);
        assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.CLOSE);
        assertThat(scanner.discardedFrames()).isEqualTo(2);
        assertThat(counted.messages).isEmpty();
        assertThat(counted.overLimits).isEmpty();
    }

    @Test
    void xorMatchesTheBytewiseMaskAtEveryOffsetAndLength() {
        final Random random = new Random(5);
        for (int length = 0; length < 40; length++) {
            for (int phase = 0; phase < 4; phase++) {
                final byte[] data = bytes(random, length);
                final int key = random.nextInt();
                final ByteBuffer buf = ByteBuffer.allocateDirect(length + 3);
                buf.put(3, data);
                FrameScanner.xor(buf, 3, length, Integer.rotateLeft(key, 8 * phase));
                for (int i = 0; i < length; i++) {
                    assertThat(buf.get(3 + i)).isEqualTo((byte) (data[i] ^ (key >>> (24 - 8 * ((i + phase) & 3)))));
                }
            }
        }
    }

    private static void assertRefused(byte[] bad, Class<? extends Exception> type, String message) {
        final byte[] good = frame(true, 0, TEXT, "good".getBytes(StandardCharsets.UTF_8), 7);
        final byte[] wire = concat(good, good, bad, good);
        final FrameScanner scanner = new FrameScanner(true, new MaskKeys(), 1 << 20, 1000, new Counted());
        assertThat(scanner.scan(ByteBuffer.wrap(wire), 0, wire.length))
                .as("the good frames before it pass, the bad one does not")
                .isEqualTo(2 * good.length);
        assertThat(scanner.stop()).isEqualTo(FrameScanner.Stop.REFUSED);
        assertThat(scanner.refusal()).isInstanceOf(type);
        if (message != null) {
            assertThat(scanner.refusal()).hasMessage(message);
        }
    }

    private static byte[] concat(byte[]... parts) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
