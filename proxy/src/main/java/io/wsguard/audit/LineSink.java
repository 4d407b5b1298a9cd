package io.wsguard.audit;

import java.io.IOException;

/** Where audit lines go. Used only by the log's writer thread; implementations need not be thread-safe. */
interface LineSink extends AutoCloseable {

    /** Writes one line; {@code line} has no newline, the sink adds it. May buffer. */
    void write(String line) throws IOException;

    /** Makes every line written so far durable enough to be read by another process. */
    void flush() throws IOException;

    /** The last complete line already in the sink when it was opened, or {@code null}. */
    default String lastLine() {
        return null;
    }

    @Override
    void close() throws IOException;
}
