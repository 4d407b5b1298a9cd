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

    /** Block it. {@code detail} is written to the audit log, so it never holds tokens or payloads. */
    record Deny(Reason reason, String detail) implements Verdict {
        public Deny {
            requireNonNull(reason, "reason");
            requireNonNull(detail, "detail");
        }
    }
}
