package io.wsguard.auth;

import static java.util.Objects.requireNonNull;

/**
 * An {@code auth.jwt} section that cannot work: a short secret, a key that does not parse, a key
 * source that cannot serve the pinned algorithms. Raised when the verifier is built, so that
 * {@code wsguard check} and a reload report it before any token is seen. The message says what is
 * wrong and what was expected, and never holds a secret.
 */
public final class JwtConfigException extends Exception {

    private final String field;

    public JwtConfigException(String field, String message) {
        super(message);
        this.field = requireNonNull(field, "field");
    }

    public JwtConfigException(String field, String message, Throwable cause) {
        super(message, cause);
        this.field = requireNonNull(field, "field");
    }

    /**
     * The key under {@code auth.jwt} at fault: {@code secret}, {@code publicKey}, {@code jwksFile}, {@code algorithms},
     * ...
     */
    public String field() {
        return field;
    }
}
