package io.wsguard.policy;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.regex.Pattern;

/**
 * Validates {@code proxy.trustedProxies} entries: an IPv4 or IPv6 literal with an optional prefix
 * length ({@code /32} or {@code /128} when absent). Only literals are accepted, and they are checked
 * by their shape before {@link InetAddress} sees them, so that a typo never turns into a DNS lookup.
 */
final class Cidr {

    private static final Pattern IPV4 = Pattern.compile("(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");
    private static final String EXPECTED =
            " (expected: an IP address with an optional prefix, like 10.0.0.0/8 or ::1/128)";

    private Cidr() {}

    /** Throws {@link IllegalArgumentException} with a message for the user when {@code text} is not a CIDR. */
    static void check(String text) {
        final int slash = text.indexOf('/');
        final String address = slash < 0 ? text : text.substring(0, slash);
        final int maxPrefix;
        if (IPV4.matcher(address).matches()) {
            for (String octet : address.split("\\.", -1)) {
                if (Integer.parseInt(octet) > 255) {
                    throw new IllegalArgumentException("'" + text + "' is not a CIDR" + EXPECTED);
                }
            }
            maxPrefix = 32;
        } else if (IPV6.matcher(address).matches()) {
            maxPrefix = 128;
        } else {
            throw new IllegalArgumentException("'" + text + "' is not a CIDR" + EXPECTED);
        }
        try {
            // Safe: the address is a literal by shape (digits, dots, hex and colons), so no DNS lookup happens.
            InetAddress.getByName(address);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("'" + text + "' is not a CIDR" + EXPECTED);
        }
        if (slash >= 0) {
            final String prefix = text.substring(slash + 1);
            if (!prefix.matches("\\d{1,3}") || Integer.parseInt(prefix) > maxPrefix) {
                throw new IllegalArgumentException(
                        "'" + text + "' has a bad prefix length (expected: 0.." + maxPrefix + ")");
            }
        }
    }
}
