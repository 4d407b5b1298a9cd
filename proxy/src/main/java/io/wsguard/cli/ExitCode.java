package io.wsguard.cli;

/** The CLI's exit codes (README, CLI). */
public final class ExitCode {
    public static final int OK = 0;
    /** A runtime failure: a port in use, an unreadable file at run time, an upstream error. */
    public static final int RUNTIME_FAILURE = 1;
    /** An invalid policy, or wrong usage. */
    public static final int INVALID = 2;

    private ExitCode() {}
}
