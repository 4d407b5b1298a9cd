package io.wsguard.server;

import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.metrics.RouteMetrics;
import io.wsguard.relay.Balancer;
import io.wsguard.relay.ProxySession;
import io.wsguard.relay.SessionEvents;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;

/**
 * Connects one route's sessions to the registry, the balancer's connection counts, metrics and the
 * audit log. One per compiled route, so the relay's per-message metric calls find their counters
 * without a lookup.
 */
final class ServerEvents implements SessionEvents {

    private final ConnectionRegistry registry;
    private final RouteMetrics metrics;
    private final Auditor auditor;
    private final BooleanSupplier draining;
    private final ConcurrentHashMap<String, Binding> bindings;

    ServerEvents(
            ConnectionRegistry registry, RouteMetrics metrics, Auditor auditor, BooleanSupplier draining,
            ConcurrentHashMap<String, Binding> bindings) {
        this.registry = registry;
        this.metrics = metrics;
        this.auditor = auditor;
        this.draining = draining;
        this.bindings = bindings;
    }

    /**
     * What an open session holds until it closes: a balancer slot, its policy version and the
     * leases its handshake checks took (connection-cap slots).
     */
    record Binding(Balancer.Target target, CompiledPolicy policy, Runnable leases) {
        void release() {
            target.release();
            leases.run();
            policy.release();
        }
    }

    /**
     * The upstream side is open to {@code target}; the session now holds the target, the policy
     * the handshake acquired and the handshake's {@code leases}, until it closes or is abandoned.
     */
    void bind(ProxySession session, Balancer.Target target, CompiledPolicy policy, Runnable leases) {
        bindings.put(session.id(), new Binding(target, policy, leases));
    }

    /** The client's upgrade failed after the upstream's succeeded: free what the handshake held. */
    void abandoned(ProxySession session) {
        final Binding binding = bindings.remove(session.id());
        if (binding != null) {
            binding.release();
            registry.release();
        }
    }

    @Override
    public void opened(ProxySession session) {
        registry.add(session);
        metrics.connectionOpened();
        metrics.track(session);
        metrics.handshakeAccepted();
        if (draining.getAsBoolean()) {
            // Opened while a drain began: the drain's sweep may have missed it, so close it here.
            session.shutdown();
        }
    }

    @Override
    public void closed(ProxySession session) {
        if (registry.remove(session)) {
            metrics.connectionClosed();
            metrics.untrack(session);
        }
        final Binding binding = bindings.remove(session.id());
        if (binding != null) {
            binding.release();
        }
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
        metrics.discarded(inbound);
    }

    @Override
    public int sampleBytes() {
        return auditor.log().sampleBytes();
    }
}
