package io.wsguard.tls;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;

/**
 * A PEM file that {@link Pem} cannot turn into what was asked for. The one error every reader of
 * PEM gets, whatever the file is for.
 *
 * <p>{@link #getMessage()} is one line for the user that names the file and what was expected,
 * written for TLS files, and never holds key material. Callers with their own convention (a policy
 * field, a command-line option) wrap it at the call site: {@code tls} as a
 * {@link TlsConfigException} with the message as is, {@code auth} and {@code wsguard token} with
 * their own words chosen by {@link #problem()}.
 */
public final class PemException extends RuntimeException {

    /** What is wrong with the file, for callers that word it their own way. */
    public enum Problem {
        /** The file does not exist. */
        MISSING,
        /** The file exists but cannot be read: permissions, or an I/O error. */
        UNREADABLE,
        /** Not PEM, or a block whose contents do not parse. */
        MALFORMED,
        /** A key block that parses, but that the JDK cannot turn into a key: an algorithm it lacks, or bad numbers. */
        UNUSABLE,
        /** The file ends inside a PEM block: cut short, or still being written. */
        TRUNCATED,
        /** A password-protected private key. */
        ENCRYPTED,
        /** A certificate where a private key should be, or a private key where a public one should be. */
        WRONG_KIND,
        /** No object of the kind asked for. */
        ABSENT,
        /** Certificates that are not one chain, leaf first. */
        CHAIN_OUT_OF_ORDER
    }

    private final Path file;
    private final Problem problem;

    PemException(Path file, Problem problem, String message) {
        super(requireNonNull(message, "message"));
        this.file = requireNonNull(file, "file");
        this.problem = requireNonNull(problem, "problem");
    }

    PemException(Path file, Problem problem, String message, Throwable cause) {
        super(requireNonNull(message, "message"), cause);
        this.file = requireNonNull(file, "file");
        this.problem = requireNonNull(problem, "problem");
    }

    /** The file at fault. */
    public Path file() {
        return file;
    }

    /** What is wrong with it. */
    public Problem problem() {
        return problem;
    }
}
