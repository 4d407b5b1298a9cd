package io.wsguard.handshake;

import io.wsguard.route.QueryNames;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpHeader;

/**
 * Where a route looks for its token ({@code auth.jwt.tokenSources}), in the order given, and what
 * of the request must not reach the upstream because it carried one.
 *
 * <p>Browsers cannot set an {@code Authorization} header on a WebSocket, so they send the token as
 * a subprotocol {@code bearer.<jwt>}, a query parameter or a cookie. The subprotocol and query forms
 * are removed before the upgrade is forwarded: the upstream gets the verified claims it asked for
 * (headers.set), never the credential itself.
 *
 * <p>A request may carry one credential, in as many of the sources as it likes: every occurrence
 * in every source is read, and two that differ make the request ambiguous ({@link Several}). Were
 * only the first read, the upstream (or any framework on the way that reads another source, or the
 * last of two values) could act on a credential wsguard never verified.
 */
public final class TokenSources {

    /** The subprotocol prefix that marks a token (README, Policy file). */
    public static final String SUBPROTOCOL_PREFIX = "bearer.";

    /** Where a token was found; the audit log may name it, never the token. */
    public enum Kind {
        HEADER,
        SUBPROTOCOL,
        QUERY,
        COOKIE
    }

    /** What a request carries in the route's sources: one token, or more than one credential. */
    public sealed interface Credentials permits Found, Several {}

    /** A token and where it came from (the first source, in the configured order, that had it). */
    public record Found(String token, Kind kind) implements Credentials {
        @Override
        public String toString() {
            return "Found[" + kind + "]";
        }
    }

    /**
     * Two credentials that differ: two {@code Authorization} fields, a repeated query parameter or
     * cookie, two {@code bearer.} subprotocols, or tokens in two sources; {@code first} and
     * {@code second} say where (they are equal when one source held both).
     */
    public record Several(Kind first, Kind second) implements Credentials {
        /** For the audit detail: where, never what. */
        public String where() {
            return first == second ? "two in " + name(first) : name(first) + " and " + name(second);
        }

        private static String name(Kind kind) {
            return kind.name().toLowerCase(Locale.ROOT);
        }
    }

    private record Source(Kind kind, String name) {}

    private final List<Source> sources;
    private final boolean subprotocol;
    private final List<String> queryNames;
    /** The {@link QueryNames} readings of {@link #queryNames}: what is stripped from the forwarded query. */
    private final Set<String> queryNameReadings;

    private TokenSources(List<Source> sources) {
        this.sources = List.copyOf(sources);
        this.subprotocol = sources.stream().anyMatch(s -> s.kind() == Kind.SUBPROTOCOL);
        this.queryNames = sources.stream()
                .filter(s -> s.kind() == Kind.QUERY)
                .map(Source::name)
                .toList();
        this.queryNameReadings = QueryNames.ofNames(queryNames);
    }

    /**
     * Parses {@code header}, {@code subprotocol}, {@code query:NAME}, {@code cookie:NAME} (validated by the policy
     * loader).
     */
    public static TokenSources parse(List<String> specs) {
        final List<Source> sources = new ArrayList<>();
        for (String spec : specs) {
            final int colon = spec.indexOf(':');
            final String kind = colon < 0 ? spec : spec.substring(0, colon);
            final String name = colon < 0 ? null : spec.substring(colon + 1);
            sources.add(
                    switch (kind) {
                        case "header" -> new Source(Kind.HEADER, null);
                        case "subprotocol" -> new Source(Kind.SUBPROTOCOL, null);
                        case "query" -> new Source(Kind.QUERY, name);
                        case "cookie" -> new Source(Kind.COOKIE, name);
                        default -> throw new IllegalArgumentException("not a token source: " + spec);
                    });
        }
        return new TokenSources(sources);
    }

    /** The names of the {@code cookie:NAME} sources: cookies the upstream must not get. */
    public List<String> cookieNames() {
        return sources.stream()
                .filter(s -> s.kind() == Kind.COOKIE)
                .map(Source::name)
                .toList();
    }

    /**
     * The request's token, from the first source (in the configured order) that has one; or
     * {@link Several} when the sources hold more than one distinct credential; or null when none
     * holds a token. The same token in several places is one credential.
     */
    public Credentials find(HandshakeRequest request) {
        final Collector found = new Collector();
        for (Source source : sources) {
            switch (source.kind()) {
                case HEADER -> fromAuthorization(request, found);
                case SUBPROTOCOL -> fromSubprotocols(request.subprotocols(), found);
                case QUERY -> fromQuery(request.query(), source.name(), found);
                case COOKIE -> fromCookies(request, source.name(), found);
            }
        }
        return found.result();
    }

    /** Every credential seen, kept as the first and whether another differed from it. */
    private static final class Collector {
        private String first;
        private Kind firstKind;
        private boolean firstIsToken;
        private Kind otherKind;

        /**
         * @param token false for an {@code Authorization} field of another scheme than Bearer: a
         *     credential all the same, but never one wsguard verifies
         */
        void add(Kind kind, String value, boolean token) {
            if (value.isEmpty()) {
                return;
            }
            if (first == null) {
                first = value;
                firstKind = kind;
                firstIsToken = token;
            } else if (otherKind == null && (token != firstIsToken || !value.equals(first))) {
                otherKind = kind;
            }
        }

        Credentials result() {
            if (otherKind != null) {
                return new Several(firstKind, otherKind);
            }
            return first != null && firstIsToken ? new Found(first, firstKind) : null;
        }
    }

    /** Whether token subprotocol entries must be stripped before forwarding. */
    public boolean usesSubprotocol() {
        return subprotocol;
    }

    /** The subprotocols to offer upstream: the client's, without token entries when this route reads them. */
    public List<String> forwardedSubprotocols(List<String> offered) {
        if (!subprotocol) {
            return offered;
        }
        final List<String> out = new ArrayList<>(offered.size());
        for (String protocol : offered) {
            if (!isTokenSubprotocol(protocol)) {
                out.add(protocol);
            }
        }
        return out;
    }

    /**
     * The raw query to forward upstream: the client's, without the parameters that carry tokens, in
     * any spelling an upstream may read as the token's name ({@link QueryNames}: {@code ACCESS_TOKEN},
     * {@code access_token[]}, {@code access%5Ftoken}); only the exact name is read as the token, so
     * any other spelling is a credential wsguard never verified.
     */
    public String forwardedQuery(String query) {
        if (query == null || queryNames.isEmpty()) {
            return query;
        }
        final StringBuilder out = new StringBuilder(query.length());
        for (String pair : query.split("&", -1)) {
            if (QueryNames.names(pair, queryNameReadings)) {
                continue;
            }
            if (out.length() > 0) {
                out.append('&');
            }
            out.append(pair);
        }
        return out.length() == 0 ? null : out.toString();
    }

    public static boolean isTokenSubprotocol(String protocol) {
        return protocol.regionMatches(true, 0, SUBPROTOCOL_PREFIX, 0, SUBPROTOCOL_PREFIX.length());
    }

    /** Every {@code Authorization} field is a credential; those of the Bearer scheme carry a token. */
    private static void fromAuthorization(HandshakeRequest request, Collector found) {
        for (HttpField field : request.headers().getFields(HttpHeader.AUTHORIZATION)) {
            final String value = field.getValue().strip();
            if (value.length() > 7
                    && value.substring(0, 7).toLowerCase(Locale.ROOT).equals("bearer ")) {
                found.add(Kind.HEADER, value.substring(7).strip(), true);
            } else if (!value.toLowerCase(Locale.ROOT).equals("bearer")) {
                found.add(Kind.HEADER, value, false);
            }
        }
    }

    private static void fromSubprotocols(List<String> offered, Collector found) {
        for (String protocol : offered) {
            if (isTokenSubprotocol(protocol)) {
                found.add(Kind.SUBPROTOCOL, protocol.substring(SUBPROTOCOL_PREFIX.length()), true);
            }
        }
    }

    private static void fromQuery(String query, String name, Collector found) {
        if (query == null) {
            return;
        }
        for (String pair : query.split("&", -1)) {
            final int eq = pair.indexOf('=');
            if (eq > 0 && decode(pair.substring(0, eq)).equals(name)) {
                found.add(Kind.QUERY, decode(pair.substring(eq + 1)), true);
            }
        }
    }

    private static void fromCookies(HandshakeRequest request, String name, Collector found) {
        for (HttpField field : request.headers().getFields(HttpHeader.COOKIE)) {
            for (String cookie : field.getValue().split(";", -1)) {
                final int eq = cookie.indexOf('=');
                if (eq > 0 && cookie.substring(0, eq).strip().equals(name)) {
                    String value = cookie.substring(eq + 1).strip();
                    if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
                        value = value.substring(1, value.length() - 1);
                    }
                    found.add(Kind.COOKIE, value, true);
                }
            }
        }
    }

    private static String decode(String text) {
        try {
            return URLDecoder.decode(text, StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            // A malformed escape is not our parameter's name, nor a token.
            return "";
        }
    }
}
