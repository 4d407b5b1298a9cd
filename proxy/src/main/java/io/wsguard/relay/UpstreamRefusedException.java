package io.wsguard.relay;

/** The upstream answered the upgrade with something other than 101 (README: 502 {@code upstream_refused}). */
public final class UpstreamRefusedException extends Exception {
    private final int status;

    public UpstreamRefusedException(int status, String target) {
        super(target + " refused the upgrade with status " + status);
        this.status = status;
    }

    public int status() {
        return status;
    }
}
