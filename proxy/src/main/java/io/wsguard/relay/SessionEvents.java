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
    default void blocked(ProxySession session, Reason reason, Mode mode, String detail, int closeCode) {
        blocked(session, reason, mode, detail, closeCode, null);
    }

    /**
     * As {@link #blocked(ProxySession, Reason, Mode, String, int)}, with up to
     * {@link #sampleBytes()} of the offending payload for the audit log ({@code sample}; null: none).
     */
    void blocked(ProxySession session, Reason reason, Mode mode, String detail, int closeCode, String sample);

    /** A message was rewritten before it went on (sanitized); {@code detail} names what, never the content. */
    void modified(ProxySession session, Reason reason, String detail);

    /**
     * How many bytes of a refused payload the audit log keeps ({@code audit.sampleBytes}); 0: none, so none are copied.
     */
    default int sampleBytes() {
        return 0;
    }

    /**
     * A data frame went nowhere because the connection was already closing (wsguard or a peer had
     * decided to end it) or the peer could no longer take it: nothing is lost without a count.
     */
    void discarded(ProxySession session, boolean inbound);
}
