package io.wsguard.server;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code proxy.trustedProxies}: the peers whose {@code X-Forwarded-For} is believed. The client's
 * address is the right-most address in the chain that is not itself a trusted proxy, so a client
 * cannot pick its own address by sending the header (it can only prepend to it).
 */
final class TrustedProxies {

    private final List<Cidr> cidrs;

    private TrustedProxies(List<Cidr> cidrs) {
        this.cidrs = List.copyOf(cidrs);
    }

    /** Parses CIDRs the policy loader already validated as IP literals with optional prefix. */
    static TrustedProxies of(List<String> cidrs) {
        final List<Cidr> parsed = new ArrayList<>();
        for (String cidr : cidrs) {
            parsed.add(Cidr.parse(cidr));
        }
        return new TrustedProxies(parsed);
    }

    boolean isTrusted(String ip) {
        if (cidrs.isEmpty() || ip == null) {
            return false;
        }
        final byte[] address = literal(ip);
        if (address == null) {
            return false;
        }
        for (Cidr cidr : cidrs) {
            if (cidr.contains(address)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The client's address given the TCP peer and the {@code X-Forwarded-For} values received.
     *
     * @param forwardedFor comma-separated lists, oldest first (may be null)
     */
    String clientIp(String peer, String forwardedFor) {
        return canonical(resolve(canonical(peer), forwardedFor));
    }

    private String resolve(String peer, String forwardedFor) {
        if (forwardedFor == null || !isTrusted(peer)) {
            return peer;
        }
        // Keeps trailing empty hops: "1.2.3.4," ends in garbage (believe nothing of it), and "," is two
        // empty hops, not none (an empty array would fail on hops[0] below).
        final String[] hops = forwardedFor.split(",", -1);
        for (int i = hops.length - 1; i >= 0; i--) {
            final String hop = stripPort(hops[i].strip());
            if (hop.isEmpty() || literal(hop) == null) {
                // Garbage in the chain: stop believing it here.
                return i == hops.length - 1 ? peer : stripPort(hops[i + 1].strip());
            }
            if (!isTrusted(hop)) {
                return hop;
            }
        }
        return stripPort(hops[0].strip());
    }

    /**
     * An address as the audit log and filters spell it: no brackets, IPv6 in RFC 5952's short form
     * ({@code ::1}, not {@code [0:0:0:0:0:0:0:1]}), so {@code audit --client ::1} finds it.
     */
    static String canonical(String ip) {
        if (ip == null) {
            return null;
        }
        final String bare = ip.startsWith("[") && ip.endsWith("]") ? ip.substring(1, ip.length() - 1) : ip;
        if (bare.indexOf(':') < 0) {
            return bare;
        }
        final byte[] bytes = literal(bare);
        if (bytes == null || bytes.length != 16) {
            return bare;
        }
        final int[] groups = new int[8];
        for (int i = 0; i < 8; i++) {
            groups[i] = ((bytes[2 * i] & 0xff) << 8) | (bytes[2 * i + 1] & 0xff);
        }
        // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first if tied.
        int bestStart = -1;
        int bestLength = 1;
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && groups[j] == 0) {
                j++;
            }
            if (j - i > bestLength) {
                bestStart = i;
                bestLength = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        final StringBuilder out = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                out.append("::");
                i += bestLength - 1;
                continue;
            }
            if (out.length() > 0 && out.charAt(out.length() - 1) != ':') {
                out.append(':');
            }
            out.append(Integer.toHexString(groups[i]));
        }
        return out.toString();
    }

    private static String stripPort(String hop) {
        if (hop.startsWith("[")) {
            final int end = hop.indexOf(']');
            return end > 0 ? hop.substring(1, end) : hop;
        }
        final int colon = hop.indexOf(':');
        if (colon > 0 && hop.indexOf(':', colon + 1) < 0) {
            return hop.substring(0, colon);
        }
        return hop;
    }

    /** The bytes of an IP literal, or null for anything else; never resolves a name. */
    static byte[] literal(String ip) {
        final boolean v4 = ip.chars().allMatch(c -> Character.isDigit(c) || c == '.');
        final boolean v6 =
                ip.indexOf(':') >= 0 && ip.chars().allMatch(c -> Character.digit(c, 16) >= 0 || c == ':' || c == '.');
        if (!v4 && !v6) {
            return null;
        }
        try {
            return InetAddress.getByName(ip).getAddress();
        } catch (UnknownHostException e) {
            return null;
        }
    }

    // Never compared or hashed (only matched against an address), so equals by array identity is unused.
    @SuppressWarnings("ArrayRecordComponent")
    private record Cidr(byte[] network, int prefix) {
        static Cidr parse(String text) {
            final int slash = text.indexOf('/');
            final String ip = slash < 0 ? text : text.substring(0, slash);
            final byte[] network = literal(ip.strip());
            if (network == null) {
                throw new IllegalArgumentException("not an IP literal: " + text);
            }
            final int prefix = slash < 0
                    ? network.length * 8
                    : Integer.parseInt(text.substring(slash + 1).strip());
            return new Cidr(network, prefix);
        }

        boolean contains(byte[] address) {
            if (address.length != network.length) {
                return false;
            }
            int bits = prefix;
            for (int i = 0; i < address.length && bits > 0; i++, bits -= 8) {
                final int mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
                if ((address[i] & mask) != (network[i] & mask)) {
                    return false;
                }
            }
            return true;
        }
    }
}
