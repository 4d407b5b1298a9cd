package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

/**
 * A value that must never be printed: JWT secrets, key-store passwords, the admin token, the audit
 * integrity key. {@link #toString()} is {@code <redacted>}, so that logs, {@code check} output and
 * {@code GET /admin/policy} are safe by construction.
 */
public record Secret(String value) {
    public Secret {
        requireNonNull(value, "value");
    }

    public boolean isEmpty() {
        return value.isEmpty();
    }

    @Override
    public String toString() {
        return "<redacted>";
    }
}
