package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.cluster.ConnectionLeases;
import io.wsguard.limit.ClientKey;
import io.wsguard.limit.ConnectionCounter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;

/**
 * {@code limits.connections}: at most {@code perIp} open connections per client ({@link ClientKey}:
 * the IPv4 address, or the IPv6 /64) and {@code perSubject} per verified token subject; past
 * either, 429 {@code connection_limit}. Runs after the token check, which sets the subject; a
 * request without one (a route with {@code auth: none}) is not counted per subject.
 *
 * <p>With {@code rateLimitStore.type: redis} the caps hold across every instance: one script takes
 * a lease under each cap at once ({@link ConnectionLeases}), together with
 * {@code proxy.clusterMaxConnections} when the operator set one (past it, 503 {@code unavailable},
 * like the instance's own {@code maxConnections}). The local counters still count this instance's
 * connections, whoever admitted them: while Redis cannot answer, {@code onUnavailable} decides
 * with them ({@code local}: this instance's own count against the cap), without a cap
 * ({@code allow}), or 503 {@code check_failed} ({@code deny}). A connection admitted without Redis
 * is still leased, so that Redis counts it once it answers again.
 *
 * <p>The slots it takes become leases of the request ({@link HandshakeRequest#addLease}): the
 * connection gives them back when its handshake fails later or when it closes. On a deny it gives
 * back what it took itself and leaves no lease, so a deny that monitor mode lets through holds no
 * slot either.
 */
final class ConnectionLimitCheck implements HandshakeCheck {

    private static final String MAX_LOCAL_KEY = "max";

    private final ConnectionCounter perIpCounter;
    private final int perIp;
    private final ConnectionCounter perSubjectCounter;
    private final int perSubject;
    private final ConnectionLeases leases;
    private final String route;
    private final ConnectionCounter clusterCounter;
    private final int clusterMax;
    private final Executor executor;

    /**
     * Counted on this instance only ({@code rateLimitStore.type: local}).
     *
     * @param perIp the cap per client, or 0 for none
     * @param perSubject the cap per subject, or 0 for none
     */
    ConnectionLimitCheck(
            ConnectionCounter perIpCounter, int perIp, ConnectionCounter perSubjectCounter, int perSubject) {
        this(perIpCounter, perIp, perSubjectCounter, perSubject, null, null, null, 0, null);
    }

    /**
     * Counted across instances in {@code leases} (when not null), with the local counters as the
     * fallback. Redis answers on Lettuce's I/O threads; the handshake continues on {@code executor}.
     *
     * @param clusterCounter this instance's connections under {@code clusterMax} (the fallback)
     * @param clusterMax {@code proxy.clusterMaxConnections}, or 0 for none
     */
    ConnectionLimitCheck(
            ConnectionCounter perIpCounter,
            int perIp,
            ConnectionCounter perSubjectCounter,
            int perSubject,
            ConnectionLeases leases,
            String route,
            ConnectionCounter clusterCounter,
            int clusterMax,
            Executor executor) {
        this.perIpCounter = perIpCounter;
        this.perIp = perIp;
        this.perSubjectCounter = perSubjectCounter;
        this.perSubject = perSubject;
        this.leases = leases;
        this.route = route;
        this.clusterCounter = clusterCounter;
        this.clusterMax = leases == null ? 0 : clusterMax;
        this.executor = executor;
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final String ipKey = perIp > 0 ? ClientKey.of(request.clientIp()) : null;
        final String subject = perSubject > 0 ? request.subject() : null;
        if (leases == null) {
            return java.util.concurrent.CompletableFuture.completedStage(local(request, ipKey, subject));
        }
        final List<ConnectionLeases.Cap> caps = new ArrayList<>(3);
        if (ipKey != null) {
            caps.add(new ConnectionLeases.Cap(ConnectionLeases.perIpKey(route, ipKey), perIp));
        }
        if (subject != null) {
            caps.add(new ConnectionLeases.Cap(ConnectionLeases.perSubjectKey(route, subject), perSubject));
        }
        if (clusterMax > 0) {
            caps.add(new ConnectionLeases.Cap(ConnectionLeases.MAX_KEY, clusterMax));
        }
        if (caps.isEmpty()) {
            return ALLOWED;
        }
        return leases.acquire(caps, request.connectionId())
                .handleAsync(
                        (outcome, failure) -> {
                            if (failure == null) {
                                if (outcome.full() != null) {
                                    return refusal(outcome.full());
                                }
                                // Admitted by Redis: this instance counts it too, for a later outage.
                                countLocally(ipKey, subject);
                                final ConnectionLeases.Lease lease = outcome.lease();
                                request.addLease(() -> {
                                    lease.release();
                                    releaseLocally(ipKey, subject);
                                });
                                return Verdict.ALLOW;
                            }
                            return switch (leases.store().onUnavailable()) {
                                case LOCAL -> {
                                    final Verdict verdict = local(request, ipKey, subject);
                                    if (verdict == Verdict.ALLOW) {
                                        final ConnectionLeases.Lease lease = leases.hold(caps, request.connectionId());
                                        request.addLease(lease::release);
                                    }
                                    yield verdict;
                                }
                                case ALLOW -> {
                                    countLocally(ipKey, subject);
                                    final ConnectionLeases.Lease lease = leases.hold(caps, request.connectionId());
                                    request.addLease(() -> {
                                        lease.release();
                                        releaseLocally(ipKey, subject);
                                    });
                                    yield Verdict.ALLOW;
                                }
                                // Not a 429: the client did nothing wrong, wsguard could not count. 503
                                // check_failed says so, like any other check that cannot decide (fail closed).
                                case DENY ->
                                    Verdict.deny(
                                            Reason.CHECK_FAILED,
                                            "connection-cap store unavailable"
                                                    + " (rateLimitStore.redis.onUnavailable: deny)");
                            };
                        },
                        executor);
    }

    /** This instance's own counts against the caps; registers the local leases when it admits. */
    private Verdict local(HandshakeRequest request, String ipKey, String subject) {
        if (ipKey != null && !perIpCounter.tryAcquire(ipKey, perIp)) {
            return Verdict.deny(Reason.CONNECTION_LIMIT, "limits.connections.perIp of " + perIp + " reached");
        }
        if (subject != null && !perSubjectCounter.tryAcquire(subject, perSubject)) {
            if (ipKey != null) {
                perIpCounter.release(ipKey);
            }
            return Verdict.deny(Reason.CONNECTION_LIMIT, "limits.connections.perSubject of " + perSubject + " reached");
        }
        if (clusterMax > 0 && !clusterCounter.tryAcquire(MAX_LOCAL_KEY, clusterMax)) {
            if (ipKey != null) {
                perIpCounter.release(ipKey);
            }
            if (subject != null) {
                perSubjectCounter.release(subject);
            }
            return Verdict.deny(Reason.UNAVAILABLE, "at proxy.clusterMaxConnections (" + clusterMax + ")");
        }
        // Registered only once all are held, so a deny above never leaves a lease to run twice.
        if (ipKey != null) {
            request.addLease(() -> perIpCounter.release(ipKey));
        }
        if (subject != null) {
            request.addLease(() -> perSubjectCounter.release(subject));
        }
        if (clusterMax > 0) {
            request.addLease(() -> clusterCounter.release(MAX_LOCAL_KEY));
        }
        return Verdict.ALLOW;
    }

    private Verdict refusal(ConnectionLeases.Cap full) {
        if (full.key().equals(ConnectionLeases.MAX_KEY)) {
            return Verdict.deny(
                    Reason.UNAVAILABLE, "at proxy.clusterMaxConnections (" + clusterMax + ") across instances");
        }
        final String which = full.key().startsWith(ConnectionLeases.perIpKey(route, ""))
                ? "limits.connections.perIp of " + perIp
                : "limits.connections.perSubject of " + perSubject;
        return Verdict.deny(Reason.CONNECTION_LIMIT, which + " reached across instances");
    }

    /** Counts a connection Redis admitted (or nobody could refuse) on this instance, past any cap. */
    private void countLocally(String ipKey, String subject) {
        if (ipKey != null) {
            perIpCounter.add(ipKey);
        }
        if (subject != null) {
            perSubjectCounter.add(subject);
        }
        if (clusterMax > 0) {
            clusterCounter.add(MAX_LOCAL_KEY);
        }
    }

    private void releaseLocally(String ipKey, String subject) {
        if (ipKey != null) {
            perIpCounter.release(ipKey);
        }
        if (subject != null) {
            perSubjectCounter.release(subject);
        }
        if (clusterMax > 0) {
            clusterCounter.release(MAX_LOCAL_KEY);
        }
    }
}
