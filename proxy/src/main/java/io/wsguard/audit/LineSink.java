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

    /**
     * Lines this sink took but lost since the last report, once it can deliver again, so that the
     * log writes a line saying so; {@code null} when there is nothing to report (yet). Sinks that
     * never lose a line they took (failures throw from {@link #write}) keep the default.
     */
    default DropReport takeDropReport() {
        return null;
    }

    /** Lines lost for {@code reason} ({@link DropReport#BUFFER_FULL}, {@link DropReport#OVERSIZED}), ever; a metric. */
    default long dropped(String reason) {
        return 0;
    }

    @Override
    void close() throws IOException;
}
