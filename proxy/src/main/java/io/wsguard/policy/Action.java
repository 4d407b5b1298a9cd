package io.wsguard.policy;

/** {@code onExceed} / {@code onViolation}: what a deny does to an open connection. */
public enum Action {
    /** Close the connection with the reason's close code. */
    CLOSE,
    /** Discard the message and keep the connection. */
    DROP
}
