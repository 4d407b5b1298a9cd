package io.wsguard.metrics;

/**
 * What one open connection has relayed so far, read by a route's counters at scrape time. Each
 * count only grows; it may be read from any thread while the connection relays.
 */
public interface Traffic {

    long messagesIn();

    long messagesOut();

    long bytesIn();

    long bytesOut();

    /**
     * How many messages of one direction fell in {@link MessageSizes} bucket {@code bucket} (not
     * cumulative): client to upstream when {@code inbound}, else upstream to client.
     */
    long messageSizes(boolean inbound, int bucket);

    /**
     * The upstream target the connection was dialled to, as the {@code upstream} label shows it (one of
     * the route's configured targets); fixed before the connection is counted as opened.
     */
    String upstream();

    /**
     * What relays the connection's frames, as the {@code path} label of {@code wsguard_connections_opened_total}
     * shows it: {@code pump} or {@code session}.
     */
    String relayPath();
}
