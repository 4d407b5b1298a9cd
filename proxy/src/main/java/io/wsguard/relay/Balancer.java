package io.wsguard.relay;

import io.wsguard.policy.UpstreamPolicy.Balance;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Orders a route's upstream targets for one connection attempt: round-robin or least-connections,
 * healthy targets first. A target that failed is skipped for a cool-down, but still tried last, so
 * that a route whose every target failed recovers as soon as one comes back.
 */
public final class Balancer {

    private final List<Target> targets;
    private final Balance balance;
    private final long coolDownNanos;
    private final AtomicInteger next = new AtomicInteger();

    public Balancer(List<URI> uris, Balance balance, Duration coolDown) {
        this.targets = uris.stream().map(Target::new).toList();
        this.balance = balance;
        this.coolDownNanos = coolDown.toNanos();
    }

    /** The targets in the order to try them for one connection. */
    public List<Target> attemptOrder() {
        final int n = targets.size();
        if (n == 1) {
            return targets;
        }
        final long now = System.nanoTime();
        final List<Target> healthy = new ArrayList<>(n);
        final List<Target> down = new ArrayList<>(n);
        final int start = Math.floorMod(next.getAndIncrement(), n);
        for (int i = 0; i < n; i++) {
            final Target t = targets.get((start + i) % n);
            (t.isDown(now) ? down : healthy).add(t);
        }
        if (balance == Balance.LEAST_CONNECTIONS) {
            // Stable sort keeps the round-robin rotation among equally loaded targets.
            healthy.sort(Comparator.comparingInt(Target::active));
        }
        down.sort(Comparator.comparingLong(t -> t.downSince));
        healthy.addAll(down);
        return healthy;
    }

    /** {@code ws://host:port/path} of {@code uri}, the port always written. */
    static String label(URI uri) {
        final String scheme = uri.getScheme() == null ? "ws" : uri.getScheme().toLowerCase(Locale.ROOT);
        final int port = uri.getPort() > 0 ? uri.getPort() : "wss".equals(scheme) ? 443 : 80;
        final String host = uri.getHost() == null ? "" : uri.getHost();
        final String path = uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/" : uri.getRawPath();
        return scheme + "://" + (host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port
                + path;
    }

    /** One upstream URI and what the balancer knows of it. */
    public final class Target {
        private final URI uri;
        private final String label;
        private final AtomicInteger active = new AtomicInteger();
        private volatile long downUntil;
        private volatile long downSince;

        Target(URI uri) {
            this.uri = uri;
            this.label = Balancer.label(uri);
        }

        public URI uri() {
            return uri;
        }

        /**
         * The target as the metrics' {@code upstream} label shows it: scheme, host, port and path,
         * without user information or query, which may carry secrets.
         */
        public String label() {
            return label;
        }

        public int active() {
            return active.get();
        }

        boolean isDown(long now) {
            return downUntil - now > 0;
        }

        /** It refused a connection: skip it for the cool-down. */
        public void markDown() {
            final long now = System.nanoTime();
            downSince = now;
            downUntil = now + coolDownNanos;
        }

        /** A connection to it opened. */
        public void acquire() {
            active.incrementAndGet();
            downUntil = 0;
        }

        /** A connection to it closed. */
        public void release() {
            active.decrementAndGet();
        }
    }
}
