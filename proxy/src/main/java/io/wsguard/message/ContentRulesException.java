package io.wsguard.message;

import static java.util.Objects.requireNonNull;

/**
 * A {@code messages:} section whose content rules cannot be compiled: a schema file that is missing,
 * not JSON or not a valid JSON Schema, a {@code $ref} wsguard would have to fetch, a deny pattern
 * that is not RE2, a {@code sanitize.fields} entry that is not a JSON path.
 *
 * <p>{@link #field()} is the path inside the route, such as {@code messages.json.schema},
 * {@code messages.json.schemas.chat} or {@code messages.deny[1].pattern}; the policy compiler
 * prefixes it with the route and reports it at that field's line and column. {@link #getMessage()}
 * is one line for the user and does not repeat the field.
 */
public final class ContentRulesException extends RuntimeException {

    private final String field;

    public ContentRulesException(String field, String message) {
        super(requireNonNull(message, "message"));
        this.field = requireNonNull(field, "field");
    }

    public ContentRulesException(String field, String message, Throwable cause) {
        super(requireNonNull(message, "message"), cause);
        this.field = requireNonNull(field, "field");
    }

    /**
     * The field at fault, relative to the route: {@code messages.json.schema}, {@code messages.sanitize.fields[0]}, …
     */
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
