package io.wsguard.server;

import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.cluster.Revocations;
import io.wsguard.metrics.RouteMetrics;
import io.wsguard.relay.ProxySession;
import io.wsguard.relay.SessionEvents;
import java.time.Duration;
import java.time.Instant;
import java.util.function.BooleanSupplier;

/**
 * Connects one route's sessions to the registry of open connections, metrics and the audit log. One
 * per compiled route, so the relay's per-message metric calls find their counters without a lookup.
 * What a connection holds (its slots, policy and target) is not here: the session carries its
 * {@link io.wsguard.admission.Admission} and gives it back when it closes.
 */
final class ServerEvents implements SessionEvents {

    private final ConnectionRegistry registry;
    private final RouteMetrics metrics;
    private final Auditor auditor;
    private final BooleanSupplier draining;
    private final Revocations revocations;

    ServerEvents(
            ConnectionRegistry registry,
            RouteMetrics metrics,
            Auditor auditor,
            BooleanSupplier draining,
            Revocations revocations) {
        this.registry = registry;
        this.metrics = metrics;
        this.auditor = auditor;
        this.draining = draining;
        this.revocations = revocations;
    }

    @Override
    public void opened(ProxySession session) {
        registry.add(session);
        metrics.connectionOpened(session);
        metrics.handshakeAccepted();
        if (draining.getAsBoolean()) {
            // Opened while a drain began: the drain's sweep may have missed it, so close it here.
            session.shutdown();
        }
        final Revocations.InForce revoked =
                revocations == null ? null : revocations.find(session.subject(), session.tokenId());
        if (revoked != null) {
            // Revoked while its handshake was past the check: the revocation's sweep missed it.
            session.closeByOperator(
                    "token revoked by operator (" + revoked.kind().field() + "=" + revoked.value() + ")");
        }
    }

    @Override
    public void closed(ProxySession session) {
        if (registry.remove(session)) {
            metrics.connectionClosed(session, Duration.between(session.openedAt(), Instant.now()));
        }
        auditor.connection(session);
    }

    @Override
    public void blocked(ProxySession session, Reason reason, Mode mode, String detail, int closeCode, String sample) {
        metrics.blocked(reason, 1);
        auditor.session(session, reason, mode, detail, closeCode, sample);
    }

    @Override
    public void modified(ProxySession session, Reason reason, String detail) {
        metrics.modified(reason);
        auditor.modified(session, reason, detail);
    }

    @Override
    public void discarded(ProxySession session, boolean inbound) {
        metrics.discarded(session, inbound);
    }

    @Override
    public int sampleBytes() {
        return auditor.log().sampleBytes();
    }
}
