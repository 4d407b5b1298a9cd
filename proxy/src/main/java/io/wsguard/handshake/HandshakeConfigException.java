package io.wsguard.handshake;

import static java.util.Objects.requireNonNull;

/**
 * A route whose handshake checks cannot be built from fields that bound fine: a key a JWT section
 * names that cannot verify its algorithms, an origin pattern that does not parse, a rate Bucket4j
 * cannot represent.
 *
 * <p>{@link #field()} is the path inside the route, such as {@code auth.jwt.publicKey} or
 * {@code limits.handshakes.perIp}; the policy compiler prefixes it with the route and reports it at
 * that field's line and column. {@link #getMessage()} is one line for the user and does not repeat
 * the field.
 */
public final class HandshakeConfigException extends RuntimeException {

    private static final long serialVersionUID = 1L;
    private final String field;

    HandshakeConfigException(String field, String message) {
        super(requireNonNull(message, "message"));
        this.field = requireNonNull(field, "field");
    }

    HandshakeConfigException(String field, IllegalArgumentException cause) {
        super(cause.getMessage(), cause);
        this.field = requireNonNull(field, "field");
    }

    /** The field at fault, relative to the route: {@code origin.allow}, {@code auth.jwt.jwksUri}, … */
    public String field() {
        return field;
    }

    /** {@code field: message}, for logs. */
    // getMessage() stays the bare problem, which the policy error puts after the field's location;
    // only a log line wants the field in front.
    @SuppressWarnings("OverrideThrowableToString")
    @Override
    public String toString() {
        return field + ": " + getMessage();
    }
}
