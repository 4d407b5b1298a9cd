package io.wsguard.relay;

import io.wsguard.check.Mode;
import io.wsguard.check.Reason;

/**
 * What a {@link ProxySession} tells the server about itself: the registry of open connections,
 * metrics and the audit log live behind this interface so that the relay depends on none of them.
 *
 * <p>Called on Jetty threads, possibly concurrently for different sessions; implementations must
 * not block.
 */
public interface SessionEvents {

    /** Both sides are open and frames flow. */
    void opened(ProxySession session);

    /** Both sides are closed; called exactly once per opened session. */
    void closed(ProxySession session);

    /**
     * A rule blocked (or, in monitor mode, would have blocked) something on an open connection.
     *
     * @param closeCode the code sent to the client, or 0 when the connection stays open
     */
    void blocked(ProxySession session, Reason reason, Mode mode, String detail, int closeCode);

    /** One whole message went through, {@code bytes} long after decompression. */
    void relayed(ProxySession session, boolean inbound, long bytes);
}
