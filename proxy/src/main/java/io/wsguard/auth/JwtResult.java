package io.wsguard.auth;

import static java.util.Objects.requireNonNull;

import io.wsguard.check.Reason;

/**
 * What {@link JwtVerifier#verify} decided about one token: a verified {@link Principal}, or the
 * reason it was refused.
 */
public sealed interface JwtResult permits JwtResult.Valid, JwtResult.Invalid {

    /** The token verified: signature, time window, {@code iss}, {@code aud} and {@code require}. */
    record Valid(Principal principal) implements JwtResult {
        public Valid {
            requireNonNull(principal, "principal");
        }
    }

    /**
     * The token was refused.
     *
     * @param reason {@link Reason#TOKEN_INVALID}, {@link Reason#TOKEN_EXPIRED}, {@link Reason#CLAIM_DENIED},
     *     or {@link Reason#CHECK_FAILED} when the keys could not be fetched
     * @param detail for the audit log: what was wrong, naming claims and the {@code kid} but never
     *     quoting the token, a secret or a claim's value
     */
    record Invalid(Reason reason, String detail) implements JwtResult {
        public Invalid {
            requireNonNull(reason, "reason");
            requireNonNull(detail, "detail");
        }
    }
}
