package io.wsguard.limit;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Exact numbers of concurrent connections per key ({@code limits.connections.perIp} and
 * {@code perSubject}). Each change runs inside {@link ConcurrentHashMap#compute}, so concurrent
 * handshakes can never overshoot a cap, and a key is removed when its count drops to 0, so the map
 * holds only keys with open connections.
 *
 * <p>Thread-safe; never blocks beyond the map's per-bin lock.
 */
public final class ConnectionCounter {

    private final ConcurrentHashMap<String, Integer> counts = new ConcurrentHashMap<>();

    /** Takes one slot for {@code key}, or returns false when it already holds {@code max}. */
    public boolean tryAcquire(String key, int max) {
        final boolean[] taken = new boolean[1];
        counts.compute(key, (k, now) -> {
            final int n = now == null ? 0 : now;
            if (n >= max) {
                return now;
            }
            taken[0] = true;
            return n + 1;
        });
        return taken[0];
    }

    /**
     * Takes one slot for {@code key} whatever the count: a connection a shared count admitted (or
     * nothing could refuse), counted here so that this instance knows its own share in an outage.
     */
    public void add(String key) {
        counts.merge(key, 1, Integer::sum);
    }

    /** Gives back one slot taken by {@link #tryAcquire} or {@link #add}; call it exactly once per slot. */
    public void release(String key) {
        counts.computeIfPresent(key, (k, now) -> now <= 1 ? null : now - 1);
    }

    /** The open count for {@code key}. */
    public int count(String key) {
        return counts.getOrDefault(key, 0);
    }

    /** How many keys hold at least one slot. */
    public int keys() {
        return counts.size();
    }
}
