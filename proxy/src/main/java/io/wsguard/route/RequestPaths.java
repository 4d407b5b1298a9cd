package io.wsguard.route;

import org.eclipse.jetty.util.URIUtil;

/**
 * The form of a request path that routes are matched against, and the refusals that keep a path
 * from meaning one thing to wsguard and another to the upstream.
 *
 * <p>Routes match the decoded path, as an upstream resolves it: {@code /%61dmin} is {@code /admin}
 * to every server behind us, so it must be to the route table too. A path with a {@code .} or
 * {@code ..} segment, or with {@code ;} path parameters, matches no route at all: an upstream that
 * resolves {@code /public/../admin} to {@code /admin}, or drops {@code ;x=1} as servlet containers do,
 * would otherwise serve a path that a stricter route guards, through a laxer route's checks. Jetty
 * refuses the encoded forms ({@code %2e%2e}, {@code %2F}, {@code %00}) with 400 before we see them;
 * the plain ones it passes as unambiguous.
 */
public final class RequestPaths {

    private RequestPaths() {}

    /**
     * The decoded path to match routes against, or null when the path must match no route: not
     * absolute, path parameters, a dot segment, an escape that decodes to a separator or NUL, or
     * an escape that does not decode.
     */
    public static String routable(String rawPath) {
        if (rawPath == null || rawPath.isEmpty() || rawPath.charAt(0) != '/' || rawPath.indexOf(';') >= 0) {
            return null;
        }
        final String decoded;
        try {
            decoded = URIUtil.decodePath(rawPath);
        } catch (IllegalArgumentException badEscape) {
            return null;
        }
        if (countSlashes(decoded) != countSlashes(rawPath)
                || decoded.indexOf('\0') >= 0
                || decoded.indexOf('\\') >= 0
                || hasDotSegment(decoded)) {
            return null;
        }
        return decoded;
    }

    /**
     * Whether {@code path} has a {@code .} or {@code ..} segment anywhere, including where a prefix
     * route's remainder starts: {@code ../admin} after the prefix {@code /chat} would become
     * {@code /chat/../admin} at the upstream.
     */
    public static boolean hasDotSegment(String path) {
        int start = 0;
        while (start <= path.length()) {
            int end = path.indexOf('/', start);
            if (end < 0) {
                end = path.length();
            }
            final int length = end - start;
            if ((length == 1 && path.charAt(start) == '.') || (length == 2 && path.startsWith("..", start))) {
                return true;
            }
            start = end + 1;
        }
        return false;
    }

    /**
     * {@code path} with its case folded, one code point at a time, as {@code toLowerCase(toUpperCase(c))}:
     * {@code /ADMIN}, {@code /Admin} and {@code /admin} all fold to {@code /admin}, and so do the
     * characters some matchers take for letters of it (the Kelvin sign for {@code k}, the dotted
     * capital I for {@code i}, the long s for {@code s}). Folding wider than any one upstream framework
     * only makes more paths reach the route written for them. Every character keeps its UTF-16 length
     * (checked over all of Unicode), so indices into the folded path are indices into the original.
     */
    public static String fold(String path) {
        int i = 0;
        while (i < path.length()) {
            final char c = path.charAt(i);
            if (c >= 0x80 || (c >= 'A' && c <= 'Z')) {
                break;
            }
            i++;
        }
        if (i == path.length()) {
            return path;
        }
        final StringBuilder out = new StringBuilder(path.length()).append(path, 0, i);
        while (i < path.length()) {
            final int cp = path.codePointAt(i);
            out.appendCodePoint(Character.toLowerCase(Character.toUpperCase(cp)));
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    /**
     * {@code /admin/} → {@code /admin}; {@code /} stays {@code /}. One slash only: empty segments never get this far.
     */
    public static String withoutTrailingSlash(String path) {
        return path.length() > 1 && path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    }

    /**
     * Whether {@code requestPath} is {@code routePath} (which has no trailing slash) or that with one trailing slash.
     */
    static boolean equalsIgnoringTrailingSlash(String requestPath, String routePath) {
        final int extra = requestPath.length() - routePath.length();
        return (extra == 0 || (extra == 1 && requestPath.endsWith("/"))) && requestPath.startsWith(routePath);
    }

    private static int countSlashes(String path) {
        int slashes = 0;
        for (int i = 0; i < path.length(); i++) {
            if (path.charAt(i) == '/') {
                slashes++;
            }
        }
        return slashes;
    }
}
