package io.wsguard.admission;

import java.util.ArrayList;
import java.util.List;

/**
 * Everything one connection holds from its admission to its end, given back by one idempotent
 * {@link #release()}. What is held today, in the order it is taken:
 * <ol>
 *   <li>the slot under {@code proxy.maxConnections} (the server's connection registry);</li>
 *   <li>the compiled policy the handshake runs on, which must not stop while the connection uses its
 *       upstream client;</li>
 *   <li>the connection caps' counts ({@code limits.connections.perIp} and {@code perSubject}),
 *       taken by the handshake check;</li>
 *   <li>the upstream target's count in its route's balancer.</li>
 * </ol>
 * A new kind of hold (a lease on a count shared with other instances, say) is one more
 * {@link #hold(Lease)} where it is taken: nothing that ends a connection needs to know of it.
 *
 * <p>Thread-safe. Leases go back in the reverse order of taking, each exactly once, on the thread
 * that releases; a lease held after the release goes back at once, so a check that completes after
 * its connection was given up leaks nothing.
 */
public final class Admission {

    /** One thing a connection holds: giving it back. Called exactly once. */
    @FunctionalInterface
    public interface Lease {
        void release();
    }

    private final List<Lease> held = new ArrayList<>(4);
    private boolean released;

    /** Holds {@code lease} until {@link #release()}; gives it back at once if that already happened. */
    public void hold(Lease lease) {
        synchronized (held) {
            if (!released) {
                held.add(lease);
                return;
            }
        }
        lease.release();
    }

    /** Gives back everything held, last taken first; later calls do nothing. */
    public void release() {
        final Lease[] toRelease;
        synchronized (held) {
            if (released) {
                return;
            }
            released = true;
            toRelease = held.toArray(new Lease[0]);
            held.clear();
        }
        for (int i = toRelease.length - 1; i >= 0; i--) {
            toRelease[i].release();
        }
    }

    /** Whether {@link #release()} has run. */
    public boolean isReleased() {
        synchronized (held) {
            return released;
        }
    }
}
