package io.wsguard.handshake;

import io.wsguard.cluster.ConnectionLeases;
import io.wsguard.cluster.Revocations;
import io.wsguard.limit.RedisBuckets;

/**
 * What the handshake checks of every route share with the running proxy, and through it with the
 * other instances: made once at start, handed to each compile.
 *
 * @param buckets the handshake-rate buckets in Redis ({@code rateLimitStore.type: redis}), or null
 *     for local buckets only
 * @param leases the connection caps counted across instances, or null for this instance only
 * @param revocations the subjects and token ids revoked ({@code POST /admin/revoke}), or null for none
 */
public record SharedState(RedisBuckets buckets, ConnectionLeases leases, Revocations revocations) {

    /** Nothing shared: {@code check}, and tests that compile a policy on its own. */
    public static final SharedState NONE = new SharedState(null, null, null);
}
