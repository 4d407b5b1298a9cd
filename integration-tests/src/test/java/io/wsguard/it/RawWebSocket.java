package io.wsguard.it;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A WebSocket client written by hand over a plain or TLS socket (RFC 6455): nothing between the
 * test and the wire, so a CLOSE frame and a TCP reset are told apart exactly. Client frames are
 * masked (RFC 6455 §5.3). One thread may write while another reads.
 */
final class RawWebSocket implements AutoCloseable {

    static final int TEXT = 0x1;
    static final int BINARY = 0x2;
    static final int CLOSE = 0x8;
    static final int PING = 0x9;

    private static final SecureRandom RANDOM = new SecureRandom();

    private final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;
    private final int status;

    private RawWebSocket(Socket socket, DataInputStream in, int status) throws IOException {
        this.socket = socket;
        this.in = in;
        this.out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
        this.status = status;
    }

    /** Connects and sends the upgrade request; {@link #status()} is the response's status code. */
    static RawWebSocket connect(URI uri, SSLContext tls) throws IOException {
        final Socket socket;
        if (uri.getScheme().equals("wss")) {
            final SSLSocket ssl = (SSLSocket) tls.getSocketFactory().createSocket();
            ssl.connect(new InetSocketAddress(uri.getHost(), uri.getPort()), 5000);
            ssl.startHandshake();
            socket = ssl;
        } else {
            socket = new Socket();
            socket.connect(new InetSocketAddress(uri.getHost(), uri.getPort()), 5000);
        }
        socket.setSoTimeout(20_000);
        socket.setTcpNoDelay(true);
        final byte[] key = new byte[16];
        RANDOM.nextBytes(key);
        final String path = uri.getRawPath() + (uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery());
        final String request = "GET " + path + " HTTP/1.1\r\n"
                + "Host: " + uri.getHost() + ":" + uri.getPort() + "\r\n"
                + "Upgrade: websocket\r\n"
                + "Connection: Upgrade\r\n"
                + "Sec-WebSocket-Key: " + Base64.getEncoder().encodeToString(key) + "\r\n"
                + "Sec-WebSocket-Version: 13\r\n\r\n";
        socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
        final DataInputStream in = new DataInputStream(socket.getInputStream());
        final String head = readHead(in);
        final int status = Integer.parseInt(head.split(" ", 3)[1]);
        return new RawWebSocket(socket, in, status);
    }

    private static String readHead(DataInputStream in) throws IOException {
        final ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (matched < 4) {
            final int b = in.read();
            if (b < 0) {
                throw new IOException("connection closed in the response head: " + head);
            }
            head.write(b);
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3))
                    ? matched + 1
                    : 0;
        }
        return head.toString(StandardCharsets.ISO_8859_1);
    }

    int status() {
        return status;
    }

    /** Writes one masked frame into the buffer; {@link #flush()} sends it. */
    void write(int opcode, byte[] payload, boolean fin) throws IOException {
        out.write((fin ? 0x80 : 0) | opcode);
        final int length = payload.length;
        if (length < 126) {
            out.write(0x80 | length);
        } else if (length < 65536) {
            out.write(0x80 | 126);
            out.write(length >>> 8);
            out.write(length & 0xff);
        } else {
            out.write(0x80 | 127);
            for (int shift = 56; shift >= 0; shift -= 8) {
                out.write((int) (((long) length >>> shift) & 0xff));
            }
        }
        final byte[] mask = new byte[4];
        RANDOM.nextBytes(mask);
        out.write(mask);
        final byte[] masked = new byte[length];
        for (int i = 0; i < length; i++) {
            masked[i] = (byte) (payload[i] ^ mask[i & 3]);
        }
        out.write(masked);
    }

    void flush() throws IOException {
        out.flush();
    }

    void sendText(String text) throws IOException {
        write(TEXT, text.getBytes(StandardCharsets.UTF_8), true);
        flush();
    }

    /** One frame from the server (never masked), or an IOException (a reset, EOF). */
    Frame read() throws IOException {
        final int b0 = in.readUnsignedByte();
        final int b1 = in.readUnsignedByte();
        long length = b1 & 0x7f;
        if (length == 126) {
            length = in.readUnsignedShort();
        } else if (length == 127) {
            length = in.readLong();
        }
        if ((b1 & 0x80) != 0) {
            throw new IOException("server frame is masked (RFC 6455 §5.1 forbids it)");
        }
        final byte[] payload = new byte[Math.toIntExact(length)];
        in.readFully(payload);
        return new Frame(b0 & 0x0f, (b0 & 0x80) != 0, payload);
    }

    /** Reads frames until a CLOSE and returns it; an IOException means no CLOSE arrived. */
    Frame readUntilClose() throws IOException {
        while (true) {
            final Frame frame = read();
            if (frame.opcode() == CLOSE) {
                return frame;
            }
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }

    /** One received frame. */
    // Tests read its parts (opcode, closeCode, text), never compare frames whole: equals by array identity is unused.
    @SuppressWarnings("ArrayRecordComponent")
    record Frame(int opcode, boolean fin, byte[] payload) {
        /** The close code of a CLOSE frame (1005 when it has none). */
        int closeCode() {
            return payload.length >= 2 ? ((payload[0] & 0xff) << 8) | (payload[1] & 0xff) : 1005;
        }

        String text() {
            return new String(payload, StandardCharsets.UTF_8);
        }
    }
}
