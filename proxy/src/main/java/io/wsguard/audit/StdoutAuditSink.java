package io.wsguard.audit;

import java.io.IOException;
import java.io.PrintStream;

/** {@code audit.sink: stdout}: one line per event on standard output, for container log collectors. */
final class StdoutAuditSink implements LineSink {

    private final PrintStream out;

    StdoutAuditSink() {
        // System.out is the configured destination here, not a debugging leftover.
        this(System.out);
    }

    StdoutAuditSink(PrintStream out) {
        this.out = out;
    }

    @Override
    public void write(String line) {
        out.print(line);
        out.print('\n');
    }

    @Override
    public void flush() throws IOException {
        out.flush();
        // PrintStream swallows I/O errors; surface them so lost lines are counted.
        if (out.checkError()) {
            throw new IOException("standard output failed");
        }
    }

    @Override
    public void close() throws IOException {
        flush(); // never close System.out: the rest of the process still logs there
    }
}
