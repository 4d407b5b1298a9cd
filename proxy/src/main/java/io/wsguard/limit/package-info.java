/**
 * Counting state behind the handshake limits: token buckets per key ({@link io.wsguard.limit.KeyedBuckets},
 * for {@code limits.handshakes.perIp} and later per-subject message rates), exact concurrent counts
 * per key ({@link io.wsguard.limit.ConnectionCounter}, for {@code limits.connections}) and the
 * holder that keeps both across a policy reload ({@link io.wsguard.limit.LimitState}), and buckets
 * shared with other instances through Redis ({@link io.wsguard.limit.RedisBuckets}). Checks in
 * {@code handshake} decide with them; nothing here knows about requests or verdicts.
 */
package io.wsguard.limit;
