package io.wsguard.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
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

    /** Sends the upgrade for {@code path} to 127.0.0.1:{@code port} with {@code extra} headers and reads the response head. */
    public static RawUpgrade send(int port, String path, Map<String, String> extra) throws IOException {
        final Socket socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(15_000);
        final StringBuilder request = new StringBuilder()
                .append("GET ").append(path).append(" HTTP/1.1\r\n")
                .append("Host: 127.0.0.1:").append(port).append("\r\n")
                .append("Upgrade: websocket\r\n")
                .append("Connection: Upgrade\r\n")
                .append("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
                .append("Sec-WebSocket-Version: 13\r\n");
        extra.forEach((name, value) -> request.append(name).append(": ").append(value).append("\r\n"));
        request.append("\r\n");
        final OutputStream out = socket.getOutputStream();
        out.write(request.toString().getBytes(StandardCharsets.US_ASCII));
        out.flush();
        final String head = readHead(socket.getInputStream());
        final String[] lines = head.split("\r\n");
        final int status = Integer.parseInt(lines[0].split(" ")[1]);
        final Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 1; i < lines.length; i++) {
            final int colon = lines[i].indexOf(':');
            if (colon > 0) {
                headers.put(lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).strip());
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
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3)) ? matched + 1 : 0;
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

    /** Drops the connection (no close handshake): the proxy sees the client go away. */
    @Override
    public void close() throws IOException {
        socket.close();
    }
}
