package io.wsguard.check;

import static java.util.Objects.requireNonNull;

/** The outcome of one check. */
public sealed interface Verdict permits Verdict.Allow, Verdict.Rewrite, Verdict.Deny {

    Verdict ALLOW = new Allow();

    static Verdict deny(Reason reason, String detail) {
        return new Deny(reason, detail);
    }

    /** Pass it on unchanged. */
    record Allow() implements Verdict {}

    /** Pass {@code text} on instead of the original message (sanitizing); audited as "modified". */
    record Rewrite(String text, Reason reason, String detail) implements Verdict {
        public Rewrite {
            requireNonNull(text, "text");
            requireNonNull(reason, "reason");
            requireNonNull(detail, "detail");
        }
    }

    static Verdict deny(Reason reason, String detail, long retryAfterSeconds) {
        return new Deny(reason, detail, retryAfterSeconds);
    }

    /**
     * Block it. {@code detail} is written to the audit log, so it never holds tokens or payloads.
     *
     * @param retryAfterSeconds for rate refusals, when the client may try again (the 429's
     *     {@code Retry-After}); 0 when it does not apply
     */
    record Deny(Reason reason, String detail, long retryAfterSeconds) implements Verdict {
        public Deny {
            requireNonNull(reason, "reason");
            requireNonNull(detail, "detail");
            if (retryAfterSeconds < 0) {
                throw new IllegalArgumentException("retryAfterSeconds < 0");
            }
        }

        public Deny(Reason reason, String detail) {
            this(reason, detail, 0);
        }
    }
}
