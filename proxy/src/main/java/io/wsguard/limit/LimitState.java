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
        return routes.computeIfAbsent(name, n -> new RouteLimits(clusterConnections));
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
        });
    }

    /** The names of the routes with state (tests). */
    public Set<String> routeNames() {
        return Set.copyOf(routes.keySet());
    }

    /** One route's counters and buckets. */
    public static final class RouteLimits {
        private final ConnectionCounter connectionsPerIp = new ConnectionCounter();
        private final ConnectionCounter connectionsPerSubject = new ConnectionCounter();
        private final ConnectionCounter clusterConnections;
        private final ConcurrentHashMap<RateLimitPolicy, KeyedBuckets> handshakesPerIp = new ConcurrentHashMap<>();
        private final ConcurrentHashMap<RateLimitPolicy, KeyedBuckets> messagesPerSubject = new ConcurrentHashMap<>();

        RouteLimits(ConnectionCounter clusterConnections) {
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
         * The per-subject message buckets for {@code limit}, shared by all of a subject's
         * connections on this route (and kept across a reload that leaves the limit unchanged).
         *
         * @throws IllegalArgumentException when Bucket4j cannot represent the limit
         */
        public KeyedBuckets messagesPerSubject(RateLimitPolicy limit) {
            return messagesPerSubject.computeIfAbsent(
                    limit,
                    l -> new KeyedBuckets(l.burst(), l.rate().amount(), l.rate().per()));
        }

        void retainSubjectMessageRate(RateLimitPolicy current) {
            messagesPerSubject.keySet().removeIf(limit -> !Objects.equals(limit, current));
        }
    }
}
