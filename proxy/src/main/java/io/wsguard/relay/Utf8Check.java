package io.wsguard.relay;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CodingErrorAction;
import org.eclipse.jetty.util.Utf8StringBuilder;

/**
 * Validates UTF-8 incrementally, across fragments, without building the string: Jetty's decoder
 * (a DFA that refuses overlong forms, surrogates and code points past U+10FFFF) with its output
 * thrown away. Runs of ASCII between complete characters skip the DFA, which keeps typical text at
 * a fraction of a nanosecond per byte.
 *
 * <p>Not thread-safe: one per direction of a connection, used by the thread delivering its frames.
 */
final class Utf8Check extends Utf8StringBuilder {

    Utf8Check() {
        super(CodingErrorAction.REPORT, CodingErrorAction.REPORT);
    }

    @Override
    protected void bufferAppend(char c) {
        // Validation only: the decoded text is not needed.
    }

    @Override
    protected void bufferReset() {
        // Nothing buffered.
    }

    /** Feeds {@code [off, off + len)} of {@code bytes}; false once the input is not UTF-8. */
    boolean feed(byte[] bytes, int off, int len) {
        final int end = off + len;
        int i = off;
        try {
            while (i < end) {
                if (isComplete()) {
                    while (i < end && bytes[i] >= 0) {
                        i++;
                    }
                    if (i == end) {
                        break;
                    }
                }
                appendByte(bytes[i++]);
            }
            return true;
        } catch (IOException | IllegalArgumentException invalid) {
            return false;
        }
    }

    /** Feeds the remaining bytes of {@code buffer} without moving its position; false once the input is not UTF-8. */
    boolean feed(ByteBuffer buffer) {
        if (buffer.hasArray()) {
            return feed(buffer.array(), buffer.arrayOffset() + buffer.position(), buffer.remaining());
        }
        final int end = buffer.limit();
        int i = buffer.position();
        try {
            while (i < end) {
                if (isComplete()) {
                    while (i < end && buffer.get(i) >= 0) {
                        i++;
                    }
                    if (i == end) {
                        break;
                    }
                }
                appendByte(buffer.get(i++));
            }
            return true;
        } catch (IOException | IllegalArgumentException invalid) {
            return false;
        }
    }

    /** Whether the input so far ends on a whole character (a message must). */
    boolean atCharBoundary() {
        return isComplete();
    }
}
