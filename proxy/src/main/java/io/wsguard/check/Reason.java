package io.wsguard.check;

import java.util.Locale;

/**
 * Why wsguard blocked or changed something. The lower-case name is the audit log's {@code reason}
 * (README, Audit log); the HTTP status and close code are the README's, kept in this one place.
 *
 * <p>A status of 0 means the reason never refuses a handshake; a close code of 0 means it never
 * closes a connection by itself.
 *
 * <p>The message stage's refusals, in full: a message (or frame) refused with {@code close}
 * ({@code onViolation}, {@code onExceed}) ends the connection. When the client sent it, the client
 * gets the reason's {@link #closeCode} and the upstream 1001; when the upstream sent it
 * ({@code direction: both}), the upstream gets the reason's code and the client 1014, since the
 * client did nothing wrong ({@link #clientCloseCode}, {@link #upstreamCloseCode}). Refused with
 * {@code drop}, or in monitor mode, it closes nothing (0 in the audit line). How a session ends
 * without breaking a message rule is {@link SessionEnd}'s table.
 */
public enum Reason {
    NO_ROUTE(Stage.HANDSHAKE, 404, 0),
    NOT_WEBSOCKET(Stage.HANDSHAKE, 426, 0),
    /** An upgrade RFC 6455 §4.2.1 says to answer with 400, e.g. a {@code Sec-WebSocket-Key} that is not 16 bytes. */
    INVALID_UPGRADE(Stage.HANDSHAKE, 400, 0),
    ORIGIN_MISSING(Stage.HANDSHAKE, 403, 0),
    ORIGIN_DENIED(Stage.HANDSHAKE, 403, 0),
    TOKEN_MISSING(Stage.HANDSHAKE, 401, 0),
    TOKEN_INVALID(Stage.HANDSHAKE, 401, 0),
    /** At the handshake; an open connection whose token expires ends as {@link SessionEnd#TOKEN_EXPIRED}. */
    TOKEN_EXPIRED(Stage.HANDSHAKE, 401, 0),
    /**
     * The token verified, but an operator revoked its subject or its {@code jti} ({@code POST
     * /admin/revoke}) and the revocation is still in force; open connections it matched were closed
     * with 1008 ({@link SessionEnd#CLOSED_BY_OPERATOR}).
     */
    TOKEN_REVOKED(Stage.HANDSHAKE, 401, 0),
    CLAIM_DENIED(Stage.HANDSHAKE, 403, 0),
    /** The route's {@code auth.clientCertificate: required}, and the client showed none. */
    CLIENT_CERTIFICATE_MISSING(Stage.HANDSHAKE, 403, 0),
    HANDSHAKE_RATE(Stage.HANDSHAKE, 429, 0),
    CONNECTION_LIMIT(Stage.HANDSHAKE, 429, 0),
    /** At {@code proxy.maxConnections} or draining: 503 (README, Policy file). */
    UNAVAILABLE(Stage.HANDSHAKE, 503, 0),
    /** A handshake check could not decide (its I/O failed): fail closed with 503. */
    CHECK_FAILED(Stage.HANDSHAKE, 503, 0),
    MESSAGE_RATE(Stage.MESSAGE, 0, CloseCodes.POLICY_VIOLATION),
    BYTE_RATE(Stage.MESSAGE, 0, CloseCodes.POLICY_VIOLATION),
    MESSAGE_TOO_BIG(Stage.MESSAGE, 0, CloseCodes.MESSAGE_TOO_BIG),
    BINARY_DENIED(Stage.MESSAGE, 0, CloseCodes.UNSUPPORTED_DATA),
    INVALID_UTF8(Stage.MESSAGE, 0, CloseCodes.INVALID_PAYLOAD),
    INVALID_JSON(Stage.MESSAGE, 0, CloseCodes.POLICY_VIOLATION),
    SCHEMA_VIOLATION(Stage.MESSAGE, 0, CloseCodes.POLICY_VIOLATION),
    PATTERN_DENIED(Stage.MESSAGE, 0, CloseCodes.POLICY_VIOLATION),
    /**
     * A frame broke RFC 6455 and Jetty's parser or session refused it (unknown opcode, a fragmented or
     * oversized control frame, a CONTINUATION out of sequence, a broken deflate stream, ...): the
     * connection is closed with the code Jetty chose, usually 1002.
     */
    PROTOCOL_ERROR(Stage.MESSAGE, 0, CloseCodes.PROTOCOL_ERROR),
    SANITIZED(Stage.MESSAGE, 0, 0),
    /** Client query parameters that named one the target's URI fixes were dropped (never refuses). */
    QUERY_OVERRIDE(Stage.HANDSHAKE, 0, 0),
    /**
     * The connection ran out of time ({@code idleTimeout}, also a message left unfinished that long, or
     * {@code maxLifetime}): 1001, going away, as the client broke no rule. Audited too when the policy
     * ends a connection, its token's expiry or an operator's close, which send 1008 ({@link SessionEnd}).
     */
    SESSION_EXPIRED(Stage.SESSION, 0, CloseCodes.SHUTDOWN),
    UPSTREAM_UNAVAILABLE(Stage.HANDSHAKE, 502, CloseCodes.BAD_GATEWAY),
    UPSTREAM_REFUSED(Stage.HANDSHAKE, 502, 0),
    CONFIG_REJECTED(Stage.CONFIG, 0, 0),
    /**
     * The shared store ({@code rateLimitStore.type: redis}) stopped answering: every shared feature
     * decides as {@code onUnavailable} says until {@link #STORE_AVAILABLE}. Audited once per outage.
     */
    STORE_UNAVAILABLE(Stage.STORE, 0, 0),
    /** The shared store answers again after {@link #STORE_UNAVAILABLE}. */
    STORE_AVAILABLE(Stage.STORE, 0, 0),
    /**
     * Audit lines the sink lost (a syslog server unreachable past the buffer, a line too large to
     * send), reported once it delivers again; the line's {@code count} is how many.
     */
    AUDIT_DROPPED(Stage.AUDIT, 0, 0);

    private final Stage stage;
    private final int httpStatus;
    private final int closeCode;

    Reason(Stage stage, int httpStatus, int closeCode) {
        this.stage = stage;
        this.httpStatus = httpStatus;
        this.closeCode = closeCode;
    }

    /** The audit log's spelling, e.g. {@code origin_denied}. */
    public String code() {
        return name().toLowerCase(Locale.ROOT);
    }

    public Stage stage() {
        return stage;
    }

    /** The status a refused handshake gets, or 0. */
    public int httpStatus() {
        return httpStatus;
    }

    /** The close code sent to the side that broke the rule when this ends a connection, or 0. */
    public int closeCode() {
        return closeCode;
    }

    /**
     * The close code the client gets when a message refused for this reason closes the connection:
     * this reason's when the client sent it, 1014 (the upstream failed) when the upstream did.
     */
    public int clientCloseCode(boolean fromClient) {
        return fromClient ? closeCode : CloseCodes.BAD_GATEWAY;
    }

    /**
     * The close code the upstream gets when a message refused for this reason closes the connection:
     * 1001 (going away) when the client sent it, this reason's when the upstream did.
     */
    public int upstreamCloseCode(boolean fromClient) {
        return fromClient ? CloseCodes.SHUTDOWN : closeCode;
    }
}
