package io.wsguard.relay;

/** No target of the route could be reached (README, Policy file: 502 {@code upstream_unavailable}). */
public final class UpstreamUnavailableException extends Exception {
    public UpstreamUnavailableException(String message) {
        super(message);
    }
}
