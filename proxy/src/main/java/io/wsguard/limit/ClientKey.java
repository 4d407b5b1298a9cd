package io.wsguard.limit;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * The key a per-IP limit counts a client under. An IPv4 address is its own key. An IPv6 address
 * counts as its /64: a single host is routinely given a whole /64 and can pick any address in it,
 * so a limit per IPv6 address is no limit at all (RFC 7934 §4; the same choice as Cloudflare's and
 * nginx users' per-/64 rate limits). Users behind one IPv6 /64 therefore share a limit, as users
 * behind one IPv4 NAT share one.
 */
public final class ClientKey {

    private ClientKey() {}

    /** {@code 203.0.113.7} → itself; {@code 2001:db8:1:2:aaaa::1} → {@code 2001:db8:1:2::/64}. */
    public static String of(String ip) {
        if (ip == null || ip.indexOf(':') < 0) {
            return ip;
        }
        for (int i = 0; i < ip.length(); i++) {
            final char c = ip.charAt(i);
            if (Character.digit(c, 16) < 0 && c != ':' && c != '.') {
                return ip; // not a literal we can reduce (a zone id, say): count it as it is
            }
        }
        final InetAddress address;
        try {
            // With a ':' and only hex digits, colons and dots, this parses a literal; no DNS.
            address = InetAddress.getByName(ip);
        } catch (UnknownHostException e) {
            return ip;
        }
        if (!(address instanceof Inet6Address)) {
            return address.getHostAddress(); // IPv4-mapped: the IPv4 address it maps
        }
        final byte[] b = address.getAddress();
        final StringBuilder key = new StringBuilder(24);
        for (int group = 0; group < 4; group++) {
            key.append(Integer.toHexString(((b[2 * group] & 0xff) << 8) | (b[2 * group + 1] & 0xff)))
                    .append(':');
        }
        return key.append(":/64").toString();
    }
}
