package io.wsguard.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.eclipse.jetty.websocket.core.util.WebSocketUtils;

/**
 * The server half of an RFC 6455 upgrade, by hand: for tests whose upstream is a raw socket that answers
 * wsguard's upgrade itself and then writes whatever bytes the test needs, valid or not.
 */
public final class RawUpstreamHandshake {

    private RawUpstreamHandshake() {}

    /** An HTTP head read byte by byte up to its blank line, nothing after it. */
    public static String readHead(InputStream in) throws IOException {
        final ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (matched < 4) {
            final int b = in.read();
            if (b < 0) {
                throw new IOException("upgrade request cut short");
            }
            head.write(b);
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3))
                    ? matched + 1
                    : 0;
        }
        return head.toString(StandardCharsets.US_ASCII);
    }

    /** The head's {@code Sec-WebSocket-Key}. */
    public static String key(String head) throws IOException {
        for (String line : head.split("\r\n", -1)) {
            if (line.toLowerCase(Locale.ROOT).startsWith("sec-websocket-key:")) {
                return line.substring("sec-websocket-key:".length()).strip();
            }
        }
        throw new IOException("no Sec-WebSocket-Key");
    }

    /** The 101 answer to {@code head}, with the accept value Jetty computes for its key. */
    public static byte[] answer(String head) throws IOException {
        return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Accept: " + WebSocketUtils.hashKey(key(head)) + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII);
    }
}
