package io.wsguard.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A WebSocket upgrade request written by hand on a plain socket, for tests that need what a
 * WebSocket client hides: the refusal's status and headers ({@code Retry-After}), any
 * {@code Origin} or {@code X-Forwarded-For}, and many handshakes at once without a client's
 * machinery. On 101 the socket stays open (the connection is up) until {@link #close()}.
 */
public final class RawUpgrade implements AutoCloseable {

    private final Socket socket;
    private final int status;
    private final Map<String, String> headers;

    private RawUpgrade(Socket socket, int status, Map<String, String> headers) {
        this.socket = socket;
        this.status = status;
        this.headers = headers;
    }

    /**
     * Sends the upgrade for {@code path} to 127.0.0.1:{@code port} with {@code extra} headers and reads the response
     * head.
     */
    public static RawUpgrade send(int port, String path, Map<String, String> extra) throws IOException {
        return send(new Socket(InetAddress.getLoopbackAddress(), port), path, extra);
    }

    /**
     * The same on a socket already connected to 127.0.0.1, e.g. an {@link javax.net.ssl.SSLSocket}
     * presenting a client certificate of the test's choosing.
     */
    public static RawUpgrade send(Socket socket, String path, Map<String, String> extra) throws IOException {
        final java.util.List<String> lines = new java.util.ArrayList<>(extra.size());
        extra.forEach((name, value) -> lines.add(name + ": " + value));
        return sendLines(socket, path, lines);
    }

    /** As {@link #send}, with the extra header lines as written ({@code "Name: value"}): a name may come twice. */
    public static RawUpgrade sendLines(int port, String path, java.util.List<String> extraLines) throws IOException {
        return sendLines(new Socket(InetAddress.getLoopbackAddress(), port), path, extraLines);
    }

    private static RawUpgrade sendLines(Socket socket, String path, java.util.List<String> extraLines)
            throws IOException {
        socket.setSoTimeout(15_000);
        final StringBuilder request = new StringBuilder()
                .append("GET ")
                .append(path)
                .append(" HTTP/1.1\r\n")
                .append("Host: 127.0.0.1:")
                .append(socket.getPort())
                .append("\r\n")
                .append("Upgrade: websocket\r\n")
                .append("Connection: Upgrade\r\n")
                .append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
                .append("Sec-WebSocket-Version: 13\r\n");
        extraLines.forEach(line -> request.append(line).append("\r\n"));
        request.append("\r\n");
        final OutputStream out = socket.getOutputStream();
        out.write(request.toString().getBytes(StandardCharsets.US_ASCII));
        out.flush();
        final String head = readHead(socket.getInputStream());
        final String[] lines = head.split("\r\n", -1);
        final int status = Integer.parseInt(lines[0].split(" ", -1)[1]);
        final Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 1; i < lines.length; i++) {
            final int colon = lines[i].indexOf(':');
            if (colon > 0) {
                headers.put(
                        lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT),
                        lines[i].substring(colon + 1).strip());
            }
        }
        return new RawUpgrade(socket, status, headers);
    }

    private static String readHead(InputStream in) throws IOException {
        final ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (matched < 4) {
            final int b = in.read();
            if (b < 0) {
                throw new IOException("connection closed before the response head ended: " + head);
            }
            head.write(b);
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3))
                    ? matched + 1
                    : 0;
        }
        return head.toString(StandardCharsets.US_ASCII);
    }

    public int status() {
        return status;
    }

    /** A response header by lower-case name, or null. */
    public String header(String name) {
        return headers.get(name.toLowerCase(Locale.ROOT));
    }

    /**
     * Writes one client frame (masked, as RFC 6455 requires of clients) with any payload, valid or
     * not: what a hostile client can put on the wire.
     */
    public void sendFrame(boolean fin, boolean rsv1, int opcode, byte[] payload) throws IOException {
        sendHeader(fin, rsv1, opcode, payload.length);
        writeMasked(payload);
    }

    /**
     * Writes a frame header claiming {@code length} payload bytes, with mask key 0 (so payload bytes go as they are).
     */
    public void sendHeader(boolean fin, boolean rsv1, int opcode, long length) throws IOException {
        final ByteArrayOutputStream header = new ByteArrayOutputStream(14);
        writeHeader(header, fin, rsv1, opcode, length);
        socket.getOutputStream().write(header.toByteArray());
    }

    /** How long a read waits before it fails with a {@link java.net.SocketTimeoutException}. */
    public void readTimeout(java.time.Duration timeout) throws IOException {
        socket.setSoTimeout((int) timeout.toMillis());
    }

    /** Writes {@code bytes} as they are, at once (no Nagle delay): frames cut wherever a test wants. */
    public void writeRaw(byte[] bytes) throws IOException {
        socket.setTcpNoDelay(true);
        socket.getOutputStream().write(bytes);
        socket.getOutputStream().flush();
    }

    /** Writes a whole text message per string, all in one socket write: the proxy reads them together. */
    public void sendTextBurst(java.util.List<String> texts) throws IOException {
        final ByteArrayOutputStream burst = new ByteArrayOutputStream();
        for (String text : texts) {
            final byte[] payload = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            writeHeader(burst, true, false, 0x1, payload.length);
            burst.write(payload);
        }
        socket.getOutputStream().write(burst.toByteArray());
        socket.getOutputStream().flush();
    }

    private static void writeHeader(ByteArrayOutputStream out, boolean fin, boolean rsv1, int opcode, long length) {
        out.write((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode);
        if (length < 126) {
            out.write(0x80 | (int) length);
        } else if (length <= 0xFFFF) {
            out.write(0x80 | 126);
            out.write((int) (length >>> 8));
            out.write((int) length);
        } else {
            out.write(0x80 | 127);
            for (int shift = 56; shift >= 0; shift -= 8) {
                out.write((int) (length >>> shift));
            }
        }
        out.writeBytes(new byte[4]); // mask key 0: masking leaves the payload unchanged
    }

    /**
     * Reads the next {@code count} text messages from the server (unmasked frames), joining the
     * fragments of each: an intermediary may refragment a message (RFC 6455 §5.4).
     */
    public java.util.List<String> readTexts(int count) throws IOException {
        final java.io.DataInputStream in = new java.io.DataInputStream(socket.getInputStream());
        final java.util.List<String> texts = new java.util.ArrayList<>(count);
        final ByteArrayOutputStream message = new ByteArrayOutputStream();
        while (texts.size() < count) {
            final ServerFrame frame = ServerFrame.read(in);
            if (frame.opcode() == 0x1 || frame.opcode() == 0x0) {
                message.write(frame.payload());
                if (frame.fin()) {
                    texts.add(message.toString(java.nio.charset.StandardCharsets.UTF_8));
                    message.reset();
                }
            }
        }
        return texts;
    }

    /** Writes payload bytes after {@link #sendHeader} (mask key 0). */
    public void writeMasked(byte[] payload) throws IOException {
        socket.getOutputStream().write(payload);
        socket.getOutputStream().flush();
    }

    /**
     * Reads server frames until a CLOSE and returns its code (1005 when it has none), or -1 when
     * the connection ended without one (EOF or reset). Data frames before it are skipped.
     */
    public int awaitCloseCode() throws IOException {
        final java.io.DataInputStream in = new java.io.DataInputStream(socket.getInputStream());
        try {
            while (true) {
                final ServerFrame frame = ServerFrame.read(in);
                if (frame.opcode() == 0x8) {
                    final byte[] payload = frame.payload();
                    return payload.length >= 2 ? ((payload[0] & 0xFF) << 8) | (payload[1] & 0xFF) : 1005;
                }
            }
        } catch (java.io.EOFException | java.net.SocketException gone) {
            return -1;
        }
    }

    /**
     * Reads the next frame from the server as it came (no joining of fragments, control frames included), for tests
     * that assert which frames reached the client; EOF or a reset throws.
     */
    public ServerFrame readFrame() throws IOException {
        return ServerFrame.read(new java.io.DataInputStream(socket.getInputStream()));
    }

    /** Drops the connection (no close handshake): the proxy sees the client go away. */
    @Override
    public void close() throws IOException {
        socket.close();
    }

    /** One frame from the server (unmasked, as RFC 6455 requires of servers). */
    // Read and taken apart where it is read, never compared, so equals by array identity is unused.
    @SuppressWarnings("ArrayRecordComponent")
    public record ServerFrame(boolean fin, int opcode, byte[] payload) {
        static ServerFrame read(java.io.DataInputStream in) throws IOException {
            final int b0 = in.readUnsignedByte();
            final int b1 = in.readUnsignedByte();
            long length = b1 & 0x7F;
            if (length == 126) {
                length = in.readUnsignedShort();
            } else if (length == 127) {
                length = in.readLong();
            }
            final byte[] payload = new byte[(int) length];
            in.readFully(payload);
            return new ServerFrame((b0 & 0x80) != 0, b0 & 0x0F, payload);
        }
    }
}
