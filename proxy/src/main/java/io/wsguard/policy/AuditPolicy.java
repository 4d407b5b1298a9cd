package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * {@code audit}: where the audit log goes (README, Audit log).
 *
 * @param sink defaults to {@code file}
 * @param path defaults to {@code logs/audit.jsonl}, relative to the policy file's directory
 * @param maxFileSize defaults to 100MiB; the file is rotated past it
 * @param maxFiles defaults to 10 rotated files kept
 * @param sampleBytes defaults to 0 (no payload sample in blocked lines)
 * @param integrityKey when present and not empty, every line carries an HMAC chained to the previous line
 * @param linesPerClient defaults to {@link #DEFAULT_LINES_PER_CLIENT}: how many lines one client address
 *        may have per period; the rest of its events are summed into one line at the period's end
 * @param connections defaults to false; when true, every connection that opened gets one line of event
 *        "connection" at its close (who, how long, how much each way, how it ended)
 * @param syslog where {@code sink: syslog} sends the lines; always present with that sink, and bound
 *        (but unused) with the others when the policy has it
 */
public record AuditPolicy(
        Sink sink,
        Path path,
        long maxFileSize,
        int maxFiles,
        int sampleBytes,
        Optional<Secret> integrityKey,
        Rate linesPerClient,
        boolean connections,
        Optional<SyslogPolicy> syslog) {

    /** One line a second on average, per client: a flood from one address cannot rotate the log away. */
    public static final Rate DEFAULT_LINES_PER_CLIENT = new Rate(60, Duration.ofMinutes(1));

    public AuditPolicy {
        requireNonNull(linesPerClient, "linesPerClient");
        requireNonNull(syslog, "syslog");
    }

    /** A file or stdout sink, without connection lines. */
    public AuditPolicy(
            Sink sink,
            Path path,
            long maxFileSize,
            int maxFiles,
            int sampleBytes,
            Optional<Secret> integrityKey,
            Rate linesPerClient) {
        this(sink, path, maxFileSize, maxFiles, sampleBytes, integrityKey, linesPerClient, false, Optional.empty());
    }

    /** With the default {@code linesPerClient}, without connection lines. */
    public AuditPolicy(
            Sink sink, Path path, long maxFileSize, int maxFiles, int sampleBytes, Optional<Secret> integrityKey) {
        this(
                sink,
                path,
                maxFileSize,
                maxFiles,
                sampleBytes,
                integrityKey,
                DEFAULT_LINES_PER_CLIENT,
                false,
                Optional.empty());
    }

    /** {@code audit.sink}. */
    public enum Sink {
        FILE,
        STDOUT,
        /** RFC 5424 messages to {@link #syslog()}'s server. */
        SYSLOG
    }
}
