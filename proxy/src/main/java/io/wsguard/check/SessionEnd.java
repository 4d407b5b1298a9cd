package io.wsguard.check;

/**
 * How wsguard ends a connection that broke no message rule, with the close code and reason each side
 * gets. All are audited as {@link Reason#SESSION_EXPIRED}; the code tells them apart: 1001 when the
 * connection ran out of time, 1008 when the policy no longer lets the client in.
 */
public enum SessionEnd {
    /** {@code idleTimeout} (also a message left unfinished that long) or {@code maxLifetime} passed. */
    EXPIRED(Reason.SESSION_EXPIRED.closeCode(), "session expired", CloseCodes.SHUTDOWN, "session expired"),
    /** The token the connection opened with expired ({@code auth.jwt.onExpiry: close}). */
    TOKEN_EXPIRED(CloseCodes.POLICY_VIOLATION, "token expired", CloseCodes.SHUTDOWN, "going away"),
    /** {@code POST /admin/connections/close}: logout, revocation. */
    CLOSED_BY_OPERATOR(CloseCodes.POLICY_VIOLATION, "closed by operator", CloseCodes.SHUTDOWN, "going away");

    private final int clientCode;
    private final String clientReason;
    private final int upstreamCode;
    private final String upstreamReason;

    SessionEnd(int clientCode, String clientReason, int upstreamCode, String upstreamReason) {
        this.clientCode = clientCode;
        this.clientReason = clientReason;
        this.upstreamCode = upstreamCode;
        this.upstreamReason = upstreamReason;
    }

    /** The audit log's reason: {@code session_expired}, whichever way the session ended. */
    public Reason reason() {
        return Reason.SESSION_EXPIRED;
    }

    /** The close code sent to the client, and the audit line's {@code closeCode}. */
    public int clientCode() {
        return clientCode;
    }

    /** The reason phrase of the client's CLOSE frame. */
    public String clientReason() {
        return clientReason;
    }

    public int upstreamCode() {
        return upstreamCode;
    }

    /** The reason phrase of the upstream's CLOSE frame. */
    public String upstreamReason() {
        return upstreamReason;
    }
}
