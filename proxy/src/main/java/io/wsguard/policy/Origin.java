package io.wsguard.policy;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Locale;

/**
 * A serialized origin (RFC 6454 §6.2): {@code scheme://host} with an optional {@code :port}, as a
 * browser sends it in the {@code Origin} header, normalised so that equal origins compare equal:
 * scheme and host in lower case, the port always explicit ({@code https://a.com} and
 * {@code https://a.com:443} are one origin), IPv6 literals in one spelling inside brackets.
 *
 * <p>Anything else is not an origin: {@code null} (what a browser sends for a sandboxed or
 * {@code file:} page), a path (even {@code /}), a query, userinfo, a trailing dot, an empty label,
 * non-ASCII (browsers send punycode). The parser is strict on purpose: the allow list compares
 * what it accepts, so a lenient parse is a way around the list.
 *
 * @param scheme lower case, e.g. {@code https}
 * @param host lower case; an IPv6 literal keeps its brackets, e.g. {@code [0:0:0:0:0:0:0:1]}
 * @param port the explicit port or the scheme's default; -1 for a scheme without a known default
 */
public record Origin(String scheme, String host, int port) {

    /** The origin, or null when {@code text} is not a serialized origin. Never resolves a name. */
    public static Origin parse(String text) {
        return text == null ? null : parse(text, false);
    }

    /** The normalised form, e.g. {@code https://chat.example.com:443}. */
    public String key() {
        return scheme + "://" + host + ":" + port;
    }

    @Override
    public String toString() {
        return key();
    }

    /**
     * Parses {@code text}; with {@code wildcard}, a leading {@code *.} before a host name is allowed
     * and kept as the first two characters of {@link #host()}. Returns null for anything else.
     */
    static Origin parse(String text, boolean wildcard) {
        final int sep = text.indexOf("://");
        if (sep <= 0) {
            return null;
        }
        final String scheme = scheme(text, sep);
        if (scheme == null) {
            return null;
        }
        int at = sep + 3;
        final boolean star = wildcard && text.startsWith("*.", at);
        if (star) {
            at += 2;
        }
        final String host;
        final int hostEnd;
        if (at < text.length() && text.charAt(at) == '[') {
            final int close = text.indexOf(']', at);
            if (star || close < 0) {
                return null;
            }
            host = ipv6(text.substring(at + 1, close));
            hostEnd = close + 1;
        } else {
            int end = at;
            while (end < text.length() && text.charAt(end) != ':') {
                end++;
            }
            host = hostName(text, at, end);
            hostEnd = end;
        }
        if (host == null) {
            return null;
        }
        final int port;
        if (hostEnd == text.length()) {
            port = defaultPort(scheme);
        } else {
            port = port(text, hostEnd + 1);
            if (port < 0) {
                return null;
            }
        }
        return new Origin(scheme, star ? "*." + host : host, port);
    }

    private static String scheme(String text, int end) {
        for (int i = 0; i < end; i++) {
            final char c = text.charAt(i);
            final boolean ok = (c >= 'a' && c <= 'z')
                    || (c >= 'A' && c <= 'Z')
                    || (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
            if (!ok) {
                return null;
            }
        }
        return text.substring(0, end).toLowerCase(Locale.ROOT);
    }

    /** Dot-separated labels of letters, digits and hyphens; no empty label (so no trailing dot). */
    private static String hostName(String text, int start, int end) {
        if (start == end) {
            return null;
        }
        boolean labelStart = true;
        for (int i = start; i < end; i++) {
            final char c = text.charAt(i);
            if (c == '.') {
                if (labelStart) {
                    return null;
                }
                labelStart = true;
            } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
                labelStart = false;
            } else {
                return null;
            }
        }
        return labelStart ? null : text.substring(start, end).toLowerCase(Locale.ROOT);
    }

    /**
     * One spelling for an IPv6 literal: {@code [::1]} and {@code [0:0::1]} are the same origin. An
     * IPv4-mapped literal keeps the IPv6 form, so it never equals the plain IPv4 origin.
     */
    private static String ipv6(String literal) {
        if (literal.indexOf(':') < 0) {
            return null;
        }
        for (int i = 0; i < literal.length(); i++) {
            final char c = literal.charAt(i);
            if (Character.digit(c, 16) < 0 && c != ':' && c != '.') {
                return null; // zone ids ("%eth0") and anything else
            }
        }
        try {
            // With a ':' in it, getByName parses an IPv6 literal and never asks DNS.
            final InetAddress address = InetAddress.getByName(literal);
            final String text =
                    address instanceof Inet4Address ? "::ffff:" + address.getHostAddress() : address.getHostAddress();
            return "[" + text + "]";
        } catch (UnknownHostException e) {
            return null;
        }
    }

    /** The digits from {@code start} to the end as a port 1..65535, or -1. */
    private static int port(String text, int start) {
        final int length = text.length() - start;
        if (length < 1 || length > 5) {
            return -1;
        }
        int port = 0;
        for (int i = start; i < text.length(); i++) {
            final char c = text.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            port = port * 10 + (c - '0');
        }
        return port >= 1 && port <= 65535 ? port : -1;
    }

    private static int defaultPort(String scheme) {
        return switch (scheme) {
            case "http", "ws" -> 80;
            case "https", "wss" -> 443;
            default -> -1;
        };
    }
}
