package io.wsguard.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * An HTTP request head written exactly as given, header by header and in order, for what neither a
 * WebSocket client nor {@link RawUpgrade} lets a test send: its own {@code Host}, a repeated
 * {@code Sec-WebSocket-Key}, a key with whitespace. Reads the response head and closes the socket.
 *
 * @param status the response's status code
 * @param headers the response's headers, by lower-case name (the last of a repeated one)
 */
public record RawRequest(int status, Map<String, String> headers) {

    /** A valid key (RFC 6455 §1.3's example nonce). */
    public static final String KEY = "dGhlIHNhbXBsZSBub25jZQ==";

    /** The usual upgrade headers except {@code Host} and the key, which each test writes itself. */
    public static List<String> upgradeHeaders() {
        return new ArrayList<>(List.of("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"));
    }

    /**
     * Sends {@code GET target HTTP/1.1} with {@code headerLines} ("Name: value", as they go on the wire) to
     * 127.0.0.1:{@code port}.
     */
    public static RawRequest get(int port, String target, List<String> headerLines) throws IOException {
        return send(port, "GET", target, headerLines);
    }

    /**
     * Sends {@code METHOD target HTTP/1.1} with {@code headerLines} and no body to 127.0.0.1:{@code port}
     * (include {@code Content-Length: 0} for a POST).
     */
    public static RawRequest send(int port, String method, String target, List<String> headerLines) throws IOException {
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
            socket.setSoTimeout(15_000);
            final StringBuilder head =
                    new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\n");
            for (String line : headerLines) {
                head.append(line).append("\r\n");
            }
            head.append("\r\n");
            socket.getOutputStream().write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
            socket.getOutputStream().flush();
            final String[] lines = readHead(socket.getInputStream()).split("\r\n", -1);
            final Map<String, String> headers = new LinkedHashMap<>();
            for (int i = 1; i < lines.length; i++) {
                final int colon = lines[i].indexOf(':');
                if (colon > 0) {
                    headers.put(
                            lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT),
                            lines[i].substring(colon + 1).strip());
                }
            }
            return new RawRequest(Integer.parseInt(lines[0].split(" ", -1)[1]), headers);
        }
    }

    /** A response header by name, or null. */
    public String header(String name) {
        return headers.get(name.toLowerCase(Locale.ROOT));
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
        return head.toString(StandardCharsets.ISO_8859_1);
    }
}
