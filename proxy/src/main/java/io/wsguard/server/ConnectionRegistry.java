package io.wsguard.server;

import io.wsguard.relay.ProxySession;
import java.util.Collection;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The open connections, and the count that enforces {@code proxy.maxConnections}: a slot is
 * reserved when a handshake passes the route lookup and released when its connection closes or
 * its handshake fails, so concurrent handshakes cannot overshoot the cap.
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

    void release() {
        reserved.decrementAndGet();
    }

    void add(ProxySession session) {
        open.put(session.id(), session);
    }

    /** Removes an open session and frees its slot; false if it was not open. */
    boolean remove(ProxySession session) {
        if (open.remove(session.id()) != null) {
            release();
            return true;
        }
        return false;
    }

    Collection<ProxySession> sessions() {
        return open.values();
    }

    int size() {
        return open.size();
    }
}
