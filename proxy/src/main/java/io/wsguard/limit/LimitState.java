package io.wsguard.limit;

import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.policy.RoutePolicy;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * The limit counters and buckets of every route, by route name, kept by the running proxy across
 * policy reloads: connections opened under the old policy still count against the new one's caps,
 * and a client's spent handshake tokens are not forgiven by a reload (unless the route's rate
 * itself changed, which starts fresh buckets). {@code wsguard check} compiles against a throwaway one.
 *
 * <p>Thread-safe.
 */
public final class LimitState {

    private final ConcurrentHashMap<String, RouteLimits> routes = new ConcurrentHashMap<>();
    /** This instance's connections under {@code proxy.clusterMaxConnections}, over all routes. */
    private final ConnectionCounter clusterConnections = new ConnectionCounter();

    /** The state of the route called {@code name}, created on first use. */
    public RouteLimits route(String name) {
        return routes.computeIfAbsent(name, n -> new RouteLimits(n, clusterConnections));
    }

    /**
     * After a reload was applied: forgets routes that are gone and buckets of rates that changed.
     * Connections still open under a forgotten route give their slots back to the counter they
     * took them from, which is then simply unreachable.
     */
    public void retain(List<RoutePolicy> current) {
        final Map<String, RoutePolicy> byName =
                current.stream().collect(Collectors.toMap(RoutePolicy::name, r -> r, (a, b) -> a));
        routes.keySet().retainAll(byName.keySet());
        routes.forEach((name, limits) -> {
            limits.retainHandshakeRate(
                    byName.get(name).limits().handshakesPerIp().orElse(null));
            limits.retainSubjectMessageRate(
                    byName.get(name).limits().messagesPerSubject().orElse(null));
            limits.retainSubjectByteRate(
                    byName.get(name).limits().bytesPerSubject().orElse(null));
        });
    }

    /** The names of the routes with state (tests). */
    public Set<String> routeNames() {
        return Set.copyOf(routes.keySet());
    }

    /** One route's counters and buckets. */
    public static final class RouteLimits {
        private final String name;
        private final ConnectionCounter connectionsPerIp = new ConnectionCounter();
        private final ConnectionCounter connectionsPerSubject = new ConnectionCounter();
        private final ConnectionCounter clusterConnections;
        private final ConcurrentHashMap<RateLimitPolicy, KeyedBuckets> handshakesPerIp = new ConcurrentHashMap<>();
        private final ConcurrentHashMap<RateLimitPolicy, SubjectRate> messagesPerSubject = new ConcurrentHashMap<>();
        private final ConcurrentHashMap<RateLimitPolicy, SubjectRate> bytesPerSubject = new ConcurrentHashMap<>();

        RouteLimits(String name, ConnectionCounter clusterConnections) {
            this.name = name;
            this.clusterConnections = clusterConnections;
        }

        public ConnectionCounter connectionsPerIp() {
            return connectionsPerIp;
        }

        public ConnectionCounter connectionsPerSubject() {
            return connectionsPerSubject;
        }

        /**
         * This instance's connections on every route under {@code proxy.clusterMaxConnections}: the
         * fallback count while Redis cannot answer. One counter for all routes.
         */
        public ConnectionCounter clusterConnections() {
            return clusterConnections;
        }

        /**
         * The per-IP handshake buckets for {@code limit}: the same ones as before the reload when
         * the limit did not change.
         *
         * @throws IllegalArgumentException when Bucket4j cannot represent the limit
         */
        public KeyedBuckets handshakesPerIp(RateLimitPolicy limit) {
            return handshakesPerIp.computeIfAbsent(
                    limit,
                    l -> new KeyedBuckets(l.burst(), l.rate().amount(), l.rate().per()));
        }

        void retainHandshakeRate(RateLimitPolicy current) {
            handshakesPerIp.keySet().removeIf(limit -> !Objects.equals(limit, current));
        }

        /**
         * The per-subject message rate for {@code limit}, shared by all of a subject's connections
         * on this route (and kept across a reload that leaves the limit unchanged): with
         * {@code shared} (a Redis store), shared with every instance too, and this instance's own
         * buckets are the fallback.
         *
         * @throws IllegalArgumentException when Bucket4j cannot represent the limit
         */
        public SubjectRate messagesPerSubject(RateLimitPolicy limit, RedisBuckets shared) {
            return messagesPerSubject.computeIfAbsent(limit, l -> subjectRate(l, shared, "message_rate", "msg"));
        }

        /** As {@link #messagesPerSubject} for {@code limits.bytes.perSubject}: one token per byte. */
        public SubjectRate bytesPerSubject(RateLimitPolicy limit, RedisBuckets shared) {
            return bytesPerSubject.computeIfAbsent(limit, l -> subjectRate(l, shared, "byte_rate", "bytes"));
        }

        private SubjectRate subjectRate(RateLimitPolicy l, RedisBuckets shared, String feature, String kind) {
            final KeyedBuckets local =
                    new KeyedBuckets(l.burst(), l.rate().amount(), l.rate().per());
            // The limit is part of the key: after a reload that changes it, no instance mixes the
            // old bucket (and its spent tokens) with the new limit.
            final String key = "wsguard:subject:" + kind + ":" + name + ":" + l.burst() + ":"
                    + l.rate().amount() + "/" + l.rate().per().toMillis() + "ms";
            return new SubjectRate(local, shared, l, feature, key);
        }

        void retainSubjectByteRate(RateLimitPolicy current) {
            bytesPerSubject.keySet().removeIf(limit -> !Objects.equals(limit, current));
        }

        void retainSubjectMessageRate(RateLimitPolicy current) {
            messagesPerSubject.keySet().removeIf(limit -> !Objects.equals(limit, current));
        }
    }
}
