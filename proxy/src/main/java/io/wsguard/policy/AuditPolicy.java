package io.wsguard.policy;

import java.nio.file.Path;
import java.util.Optional;

/**
 * {@code audit}: where the audit log goes (SPEC §5).
 *
 * @param sink defaults to {@code file}
 * @param path defaults to {@code logs/audit.jsonl}, relative to the policy file's directory
 * @param maxFileSize defaults to 100MiB; the file is rotated past it
 * @param maxFiles defaults to 10 rotated files kept
 * @param sampleBytes defaults to 0 (no payload sample in blocked lines)
 * @param integrityKey when present and not empty, every line carries an HMAC chained to the previous line
 */
public record AuditPolicy(
        Sink sink, Path path, long maxFileSize, int maxFiles, int sampleBytes, Optional<Secret> integrityKey) {

    /** {@code audit.sink}. */
    public enum Sink {
        FILE,
        STDOUT
    }
}
