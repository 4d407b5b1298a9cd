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
}
