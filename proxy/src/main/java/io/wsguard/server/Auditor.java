package io.wsguard.server;

import io.wsguard.audit.AuditEvent;
import io.wsguard.audit.AuditLog;
import io.wsguard.audit.ConnectionEvent;
import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.check.Stage;
import io.wsguard.check.Verdict;
import io.wsguard.handshake.HandshakeRequest;
import io.wsguard.relay.ConnectionEnd;
import io.wsguard.relay.ProxySession;
import java.time.Instant;

/** Turns refusals and in-session blocks into audit events (README, Audit log); the one place that knows their shape. */
final class Auditor {

    private final AuditLog log;
    private final boolean connections;

    /** {@code connections}: {@code audit.connections}, one line per connection at its close. */
    Auditor(AuditLog log, boolean connections) {
        this.log = log;
        this.connections = connections;
    }

    AuditLog log() {
        return log;
    }

    /** A handshake refused (or, in monitor mode, let through although a check denied it). */
    void handshake(String route, HandshakeRequest request, Verdict.Deny deny, Mode mode) {
        final boolean enforced = mode == Mode.ENFORCE;
        log.record(handshakeEvent(
                        enforced ? AuditEvent.Kind.BLOCKED : AuditEvent.Kind.MONITORED, deny.reason(), route, request)
                .action(enforced ? "refuse" : "none")
                .status(enforced ? deny.reason().httpStatus() : null)
                .detail(deny.detail())
                .build());
    }

    /**
     * An upgrade request was changed before it went upstream (enforced), or would have been (monitor
     * mode, where it went on unchanged).
     */
    void handshakeModified(String route, HandshakeRequest request, Reason reason, Mode mode, String detail) {
        final boolean enforced = mode == Mode.ENFORCE;
        log.record(
                handshakeEvent(enforced ? AuditEvent.Kind.MODIFIED : AuditEvent.Kind.MONITORED, reason, route, request)
                        .action(enforced ? "modify" : "none")
                        .detail(detail)
                        .build());
    }

    private static AuditEvent.Builder handshakeEvent(
            AuditEvent.Kind kind, Reason reason, String route, HandshakeRequest request) {
        return AuditEvent.builder(kind, reason)
                .ts(Instant.now())
                .stage(Stage.HANDSHAKE)
                .route(route)
                .client(request.clientIp())
                // No conn yet: handshake events coalesce per client and route (a flood is one line a
                // second), as the log does for every event with a client.
                .sub(request.subject())
                .origin(request.header("Origin"));
    }

    /** A policy reload was refused; {@code detail} names the problems (never secrets: the loader never prints them). */
    void config(Reason reason, String detail) {
        log.record(AuditEvent.builder(AuditEvent.Kind.CONFIG, reason)
                .ts(Instant.now())
                .stage(Stage.CONFIG)
                .action("reject")
                .detail(detail)
                .build());
    }

    /**
     * The shared store stopped answering: shared features now decide as {@code onUnavailable} says.
     * {@code where} and {@code cause} never hold a password (RedisStore keeps the URI out of both).
     */
    void storeUnavailable(String where, String cause, String onUnavailable) {
        log.record(AuditEvent.builder(AuditEvent.Kind.STORE, Reason.STORE_UNAVAILABLE)
                .ts(Instant.now())
                .detail("redis at " + where + " unavailable (" + cause + "); shared features decide as onUnavailable: "
                        + onUnavailable)
                .build());
    }

    /** The shared store answers again: shared features decide through it. */
    void storeAvailable(String where) {
        log.record(AuditEvent.builder(AuditEvent.Kind.STORE, Reason.STORE_AVAILABLE)
                .ts(Instant.now())
                .detail("redis at " + where + " answers again; shared features decide through it")
                .build());
    }

    /** Something on an open connection was blocked, or would have been in monitor mode. */
    void session(ProxySession session, Reason reason, Mode mode, String detail, int closeCode, String sample) {
        final boolean enforced = mode == Mode.ENFORCE;
        // An upstream that fails mid-session is a session event, though the same reason refuses handshakes.
        final Stage stage = reason == Reason.UPSTREAM_UNAVAILABLE ? Stage.SESSION : reason.stage();
        log.record(AuditEvent.builder(enforced ? AuditEvent.Kind.BLOCKED : AuditEvent.Kind.MONITORED, reason)
                .ts(Instant.now())
                .stage(stage)
                .route(session.route())
                .client(session.clientIp())
                .conn(session.id())
                .sub(session.subject())
                .origin(session.origin())
                .action(enforced ? (closeCode > 0 ? "close" : "drop") : "none")
                .closeCode(enforced && closeCode > 0 ? closeCode : null)
                .detail(detail)
                .sample(sample)
                .build());
    }

    /**
     * A connection that opened has closed, both sides: its {@code connection} line, when
     * {@code audit.connections} is on. Reads the session's own counters, which are final now: one
     * object per connection, nothing per message.
     */
    void connection(ProxySession session) {
        if (!connections) {
            return;
        }
        final Instant now = Instant.now();
        final Instant opened = session.openedAt();
        final ConnectionEnd end = session.end();
        log.recordConnection(new ConnectionEvent(
                now,
                session.route(),
                session.clientIp(),
                session.id(),
                session.subject(),
                session.origin(),
                opened,
                Math.max(0, now.toEpochMilli() - opened.toEpochMilli()),
                session.messagesIn(),
                session.bytesIn(),
                session.messagesOut(),
                session.bytesOut(),
                end.by().code(),
                end.reason(),
                end.code(),
                end.phrase(),
                end.detail(),
                session.target()));
    }

    /** A message on an open connection was rewritten before it went on (sanitized). */
    void modified(ProxySession session, Reason reason, String detail) {
        log.record(AuditEvent.builder(AuditEvent.Kind.MODIFIED, reason)
                .ts(Instant.now())
                .stage(reason.stage())
                .route(session.route())
                .client(session.clientIp())
                .conn(session.id())
                .sub(session.subject())
                .origin(session.origin())
                .action("modify")
                .detail(detail)
                .build());
    }
}
