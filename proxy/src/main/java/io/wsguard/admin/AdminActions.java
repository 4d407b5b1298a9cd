package io.wsguard.admin;

import io.wsguard.audit.MacChain;
import io.wsguard.cluster.Revocations;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * What the admin port asks of the running proxy. Implemented by the server; {@link AdminServer}
 * only translates HTTP to these calls and their results to JSON.
 *
 * <p>Every method is called on a Jetty thread of the admin port, one call per request, possibly
 * concurrently. Apart from {@link #reload()} they must return quickly and must not block.
 */
public interface AdminActions {

    /**
     * Re-reads and applies the policy file (README, Admin port: new connections get it, open ones keep theirs).
     * A rejected file leaves the old policy in place and is audited as {@code config_rejected} by
     * the implementation. This is the one call allowed to block, for as long as reading and
     * compiling the policy takes; it runs on an admin thread, never on a proxy thread.
     */
    ReloadResult reload();

    /**
     * The policy in force, as records (or any object Jackson can render). Secrets are written as
     * {@code "<redacted>"} by the admin port, whatever their place in the object.
     */
    Object effectivePolicy();

    /**
     * The audit log's integrity chain head: the last sequence number written and its mac, for an
     * operator to record away from this host ({@code wsguard audit --verify --expect-last}). Empty
     * without {@code audit.integrityKey}, or before the chain's first line.
     */
    Optional<MacChain.Head> auditHead();

    /**
     * What this instance runs without, for {@code /readyz}'s body: the shared store while it cannot
     * be reached (the instance still serves, deciding shared limits as {@code onUnavailable} says).
     * Empty when nothing is degraded. Must not block: it reads the store's last known state.
     */
    default Optional<String> degraded() {
        return Optional.empty();
    }

    /**
     * The cluster view ({@code GET /admin/cluster}): the live instances sharing this one's Redis,
     * or this instance alone. The stage completes later, on another thread, and never fails; the
     * caller must not wait for it on its own thread.
     */
    CompletionStage<?> cluster();

    /** A snapshot of the open client connections; the list is not modified afterwards. */
    List<ConnectionInfo> connections();

    /**
     * Closes every open connection {@code filter} matches with 1008 and audits each (README, Admin port: for
     * logout and revocation). Starts the closes and returns without waiting for them to finish.
     *
     * @return how many connections were told to close
     */
    int close(ConnectionFilter filter);

    /**
     * {@link #close} here, then asks every other instance to do the same through Redis (each closes
     * and audits its own). Never waits on Redis: the stage completes when Redis has answered or
     * failed, and never fails for Redis (the answer then says only this instance acted).
     */
    CompletionStage<Broadcast> closeEverywhere(ConnectionFilter filter);

    /**
     * Revokes a subject or token id for {@code ttl} on every instance: matching connections closed
     * with 1008, new handshakes refused with 401 {@code token_revoked}. As {@link #closeEverywhere},
     * the stage completes once Redis has answered or failed.
     */
    CompletionStage<Revocations.Outcome> revoke(Revocations.Kind kind, String value, Duration ttl);

    /** The revocations in force on this instance (with Redis, every instance's, as of the last heartbeat). */
    List<Revocations.InForce> revocations();

    /** Why close and revoke would reach only this instance now, or null when they reach every one. */
    String localOnly();
}
