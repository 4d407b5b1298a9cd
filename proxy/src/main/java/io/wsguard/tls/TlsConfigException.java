package io.wsguard.tls;

import static java.util.Objects.requireNonNull;

/**
 * A {@code tls} section that cannot be turned into a working TLS context: a missing or unreadable
 * file, a file that is not what the field expects, a key that does not belong to its certificate,
 * a wrong key-store password or a refused protocol.
 *
 * <p>{@link #field()} is the path inside the {@code tls} section, such as {@code protocols},
 * {@code clientCAs} or {@code certificates[1].privateKey} (PEM pairs are always indexed; the first
 * pair, {@code certificates[0]}, is the one the top-level {@code certificate}/{@code privateKey}
 * keys make). The policy compiler prefixes it with the file position of that field.
 * {@link #getMessage()} is one line for the user that names the file and what was expected, and
 * never contains a password or key material; it does not repeat the field.
 */
public final class TlsConfigException extends RuntimeException {

    private final String field;

    /** A problem with {@code field}; {@code message} is shown to the user as is. */
    public TlsConfigException(String field, String message) {
        super(requireNonNull(message, "message"));
        this.field = requireNonNull(field, "field");
    }

    /** Same, keeping the low-level cause for {@code --debug} output. */
    public TlsConfigException(String field, String message, Throwable cause) {
        super(requireNonNull(message, "message"), cause);
        this.field = requireNonNull(field, "field");
    }

    /**
     * A PEM file named by {@code field} that cannot be used; {@link Pem} words its messages for TLS, so they are kept.
     */
    public TlsConfigException(String field, PemException cause) {
        this(field, cause.getMessage(), cause);
    }

    /**
     * The field at fault, relative to the {@code tls} section: {@code certificates[1].privateKey},
     * {@code keyStorePassword}, …
     */
    public String field() {
        return field;
    }

    /** {@code field: message}, for logs and audit lines. */
    // getMessage() stays the bare problem, which the policy error puts after the field's location;
    // only a log line wants the field in front.
    @SuppressWarnings("OverrideThrowableToString")
    @Override
    public String toString() {
        return field + ": " + getMessage();
    }
}
