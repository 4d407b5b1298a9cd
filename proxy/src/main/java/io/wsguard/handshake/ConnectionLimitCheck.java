package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.limit.ClientKey;
import io.wsguard.limit.ConnectionCounter;
import java.util.concurrent.CompletionStage;

/**
 * {@code limits.connections}: at most {@code perIp} open connections per client ({@link ClientKey}:
 * the IPv4 address, or the IPv6 /64) and {@code perSubject} per verified token subject; past
 * either, 429 {@code connection_limit}. Runs after the token check, which sets the subject; a
 * request without one (a route with {@code auth: none}) is not counted per subject.
 *
 * <p>The slots it takes become leases of the request ({@link HandshakeRequest#addLease}): the
 * connection gives them back when its handshake fails later or when it closes. On a deny it gives
 * back what it took itself and leaves no lease, so a deny that monitor mode lets through holds no
 * slot either.
 */
final class ConnectionLimitCheck implements HandshakeCheck {

    private final ConnectionCounter perIpCounter;
    private final int perIp;
    private final ConnectionCounter perSubjectCounter;
    private final int perSubject;

    /**
     * @param perIp the cap per client, or 0 for none
     * @param perSubject the cap per subject, or 0 for none
     */
    ConnectionLimitCheck(
            ConnectionCounter perIpCounter, int perIp, ConnectionCounter perSubjectCounter, int perSubject) {
        this.perIpCounter = perIpCounter;
        this.perIp = perIp;
        this.perSubjectCounter = perSubjectCounter;
        this.perSubject = perSubject;
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final String ipKey = perIp > 0 ? ClientKey.of(request.clientIp()) : null;
        if (ipKey != null && !perIpCounter.tryAcquire(ipKey, perIp)) {
            return HandshakeCheck.deny(Reason.CONNECTION_LIMIT, "limits.connections.perIp of " + perIp + " reached");
        }
        final String subject = perSubject > 0 ? request.subject() : null;
        if (subject != null && !perSubjectCounter.tryAcquire(subject, perSubject)) {
            if (ipKey != null) {
                perIpCounter.release(ipKey);
            }
            return HandshakeCheck.deny(
                    Reason.CONNECTION_LIMIT, "limits.connections.perSubject of " + perSubject + " reached");
        }
        // Registered only once both are held, so a deny above never leaves a lease to run twice.
        if (ipKey != null) {
            request.addLease(() -> perIpCounter.release(ipKey));
        }
        if (subject != null) {
            request.addLease(() -> perSubjectCounter.release(subject));
        }
        return ALLOWED;
    }
}
