package io.wsguard.server;

import io.wsguard.relay.ProxySession;
import java.util.Collection;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The open connections, and the count that enforces {@code proxy.maxConnections}: a slot is
 * reserved when a handshake passes the route lookup and held by its connection's admission, which
 * releases it when the connection closes or its handshake fails, so concurrent handshakes cannot
 * overshoot the cap.
 */
final class ConnectionRegistry {

    private final ConcurrentHashMap<String, ProxySession> open = new ConcurrentHashMap<>();
    private final AtomicInteger reserved = new AtomicInteger();

    /** Takes a slot, or returns false at {@code max}. */
    boolean tryReserve(int max) {
        while (true) {
            final int now = reserved.get();
            if (now >= max) {
                return false;
            }
            if (reserved.compareAndSet(now, now + 1)) {
                return true;
            }
        }
    }

    /** Gives back a slot {@link #tryReserve} took; once per slot (a lease of the connection's admission). */
    void release() {
        reserved.decrementAndGet();
    }

    void add(ProxySession session) {
        open.put(session.id(), session);
    }

    /** Removes an open session; false if it was not open. Its slot goes back with its admission. */
    boolean remove(ProxySession session) {
        return open.remove(session.id()) != null;
    }

    Collection<ProxySession> sessions() {
        return open.values();
    }

    int size() {
        return open.size();
    }
}
