package io.wsguard.auth;

import static java.util.Objects.requireNonNull;

import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * Who a verified token says the client is. Only ever built from a token whose signature and claims
 * checked out, so its claims may be passed upstream ({@code ${jwt.CLAIM}}).
 *
 * @param subject the {@code sub} claim, or null when the token has none
 * @param claims every claim, as nimbus parsed them (strings, numbers, booleans, lists, maps)
 * @param expiresAt the {@code exp} claim, empty when the token has none
 */
public record Principal(String subject, Map<String, Object> claims, Optional<Instant> expiresAt) {

    public Principal {
        claims = Map.copyOf(claims);
        requireNonNull(expiresAt, "expiresAt");
    }

    /**
     * A claim as text for a header: strings as they are, arrays joined with a space (like
     * {@code scope}), other values by their JSON-ish text; null when the claim is absent.
     */
    public String claimText(String name) {
        final Object value = claims.get(name);
        if (value == null) {
            return null;
        }
        if (value instanceof java.util.Collection<?> list) {
            final StringBuilder out = new StringBuilder();
            for (Object item : list) {
                if (out.length() > 0) {
                    out.append(' ');
                }
                out.append(item);
            }
            return out.toString();
        }
        if (value instanceof java.util.Date date) {
            return Long.toString(date.toInstant().getEpochSecond());
        }
        return value.toString();
    }
}
