package io.wsguard.check;

import java.util.Locale;

/** A route's {@code mode}: enforce its checks, or only audit what they would have blocked. */
public enum Mode {
    ENFORCE,
    /** Every check runs and audits {@code event: monitored}; nothing is refused (docs/policy.md). */
    MONITOR;

    public String code() {
        return name().toLowerCase(Locale.ROOT);
    }
}
