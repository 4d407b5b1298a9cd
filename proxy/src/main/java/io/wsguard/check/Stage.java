package io.wsguard.check;

import java.util.Locale;

/** Where on a connection's path something was blocked or changed; the audit log's {@code stage} (README, Audit log). */
public enum Stage {
    HANDSHAKE,
    MESSAGE,
    SESSION,
    CONFIG,
    /** Not on a connection's path: the shared store (Redis) went away or came back. */
    STORE,
    /** Not on a connection's path: the audit log's own delivery (lines a syslog sink lost). */
    AUDIT;

    /** The audit log's spelling, e.g. {@code handshake}. */
    public String code() {
        return name().toLowerCase(Locale.ROOT);
    }
}
