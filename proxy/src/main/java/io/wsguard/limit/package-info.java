/**
 * Counting state behind the handshake limits: token buckets per key ({@link io.wsguard.limit.KeyedBuckets},
 * for {@code limits.handshakes.perIp} and later per-subject message rates), exact concurrent counts
 * per key ({@link io.wsguard.limit.ConnectionCounter}, for {@code limits.connections}) and the
 * holder that keeps both across a policy reload ({@link io.wsguard.limit.LimitState}), and buckets
 * shared with other instances through Redis ({@link io.wsguard.limit.RedisBuckets}), and the
 * per-subject message and byte rates ({@link io.wsguard.limit.SubjectRate}: local buckets, or a local
 * allowance fed in blocks from Redis). Checks in {@code handshake} and the relay decide with them;
 * nothing here knows about requests or verdicts.
 */
package io.wsguard.limit;
