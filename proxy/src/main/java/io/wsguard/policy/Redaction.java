package io.wsguard.policy;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.StringJoiner;

/**
 * Secrets a policy holds as plain text, hidden wherever the policy is shown: {@code GET /admin/policy}
 * and the error messages of {@code check} and reload (which reach the audit log and the admin port).
 */
public final class Redaction {

    /** What a secret is written as; its length and emptiness stay hidden too. */
    public static final String REDACTED = "<redacted>";

    private Redaction() {}

    /** A URI as it may be shown: no userinfo password, no query values ({@link #withoutQueryValues}). */
    public static String uri(String uri) {
        return withoutQueryValues(withoutPassword(uri));
    }

    /**
     * {@code uri} with the password in its userinfo replaced by {@link #REDACTED}: scheme, user,
     * host, port, path and query stay readable. {@code redis://:pw@host} and {@code redis://user:pw@host}
     * keep {@code :} and {@code user:}; a user alone ({@code redis://token@host}) is redacted whole,
     * since Redis takes it as the password and HTTP services as a token.
     */
    public static String withoutPassword(String uri) {
        final int authorityStart = uri.indexOf("://") + 3;
        if (authorityStart < 3) {
            return uri;
        }
        if (!hasServerAuthority(uri)) {
            // The binder refuses URIs without a host, so a valid policy has none; without one the
            // userinfo cannot be told from the rest, and anything past the scheme may be a password.
            return uri.indexOf('@', authorityStart) < 0 ? uri : uri.substring(0, authorityStart) + REDACTED;
        }
        int authorityEnd = authorityStart;
        while (authorityEnd < uri.length() && "/?#".indexOf(uri.charAt(authorityEnd)) < 0) {
            authorityEnd++;
        }
        // The host cannot hold '@', so the last one ends the userinfo (RFC 3986 §3.2).
        final int at = uri.lastIndexOf('@', authorityEnd - 1);
        if (at < authorityStart) {
            return uri;
        }
        final String userInfo = uri.substring(authorityStart, at);
        final int colon = userInfo.indexOf(':');
        final String shown = colon < 0 ? REDACTED : userInfo.substring(0, colon + 1) + REDACTED;
        return uri.substring(0, authorityStart) + shown + uri.substring(at);
    }

    /**
     * {@code uri} with every query parameter's value replaced by {@link #REDACTED}, names kept: an
     * upstream or JWKS URI may carry its access token as {@code ?access_token=...}. Not for the Redis
     * URI, whose query holds only the client's settings ({@code ?timeout=5s}).
     */
    public static String withoutQueryValues(String uri) {
        final int query = uri.indexOf('?');
        if (query < 0) {
            return uri;
        }
        final int fragment = uri.indexOf('#', query);
        final int end = fragment < 0 ? uri.length() : fragment;
        final StringJoiner parameters = new StringJoiner("&");
        for (String parameter : uri.substring(query + 1, end).split("&", -1)) {
            final int equals = parameter.indexOf('=');
            parameters.add(equals < 0 ? parameter : parameter.substring(0, equals + 1) + REDACTED);
        }
        return uri.substring(0, query + 1) + parameters + uri.substring(end);
    }

    private static boolean hasServerAuthority(String uri) {
        try {
            return new URI(uri).getHost() != null;
        } catch (URISyntaxException e) {
            return false;
        }
    }
}
