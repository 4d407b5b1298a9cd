/**
 * What the instances of a cluster share through one Redis ({@code rateLimitStore.type: redis}):
 * the connection to it ({@link io.wsguard.cluster.RedisStore}: standalone, Sentinel or Redis Cluster,
 * one breaker, the heartbeat, pub/sub), and on top of it the shared features: connection leases,
 * per-subject allowances of message and byte rates, revocations and close-by-subject broadcast to
 * every instance, and the cluster view. Depends on {@code policy} only; {@code limit},
 * {@code handshake}, {@code relay}, {@code admin} and {@code server} use it.
 */
package io.wsguard.cluster;
