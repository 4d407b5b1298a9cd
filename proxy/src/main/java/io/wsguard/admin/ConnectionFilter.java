package io.wsguard.admin;

import static java.util.Objects.requireNonNull;

import java.util.Optional;

/**
 * Which connections {@code POST /admin/connections/close} closes: those whose subject, token id,
 * client and route equal every filter that is present. At least one must be present, so that a
 * forgotten or misspelt parameter can never close every connection.
 *
 * @param sub the JWT {@code sub}; a connection without a subject never matches it
 * @param jti the JWT {@code jti}; a connection whose token had none never matches it
 * @param client the client IP, compared as text, as {@link ConnectionInfo#client()} shows it
 * @param route the route's name
 */
public record ConnectionFilter(
        Optional<String> sub, Optional<String> jti, Optional<String> client, Optional<String> route) {

    public ConnectionFilter {
        requireNonNull(sub, "sub");
        requireNonNull(jti, "jti");
        requireNonNull(client, "client");
        requireNonNull(route, "route");
        if (sub.isEmpty() && jti.isEmpty() && client.isEmpty() && route.isEmpty()) {
            throw new IllegalArgumentException(
                    "filter: none given (expected: at least one of sub, client, route, jti)");
        }
    }

    /** A filter without a token id. */
    public ConnectionFilter(Optional<String> sub, Optional<String> client, Optional<String> route) {
        this(sub, Optional.empty(), client, route);
    }

    /** Whether a connection with this subject ({@code null} when anonymous), client IP and route matches. */
    public boolean matches(String sub, String client, String route) {
        return matches(sub, null, client, route);
    }

    /** As above, with the token's {@code jti} ({@code null} when it had none). */
    public boolean matches(String sub, String jti, String client, String route) {
        return matches(this.sub, sub)
                && matches(this.jti, jti)
                && matches(this.client, client)
                && matches(this.route, route);
    }

    private static boolean matches(Optional<String> wanted, String actual) {
        return wanted.isEmpty() || wanted.get().equals(actual);
    }
}
