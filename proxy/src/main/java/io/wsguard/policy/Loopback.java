package io.wsguard.policy;

/**
 * Whether a host name names this machine's loopback, decided on the text alone: a resolver (or an
 * attacker controlling one) never gets a say. Used where "reachable from this machine only" is what
 * keeps an unauthenticated admin port safe.
 */
public final class Loopback {

    private Loopback() {}

    /** {@code localhost}, an IPv4 literal in {@code 127.0.0.0/8}, or {@code ::1}; brackets allowed. */
    public static boolean isLoopbackName(String host) {
        final String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        if (bare.equalsIgnoreCase("localhost") || bare.equals("::1") || bare.equals("0:0:0:0:0:0:0:1")) {
            return true;
        }
        final String[] octets = bare.split("\\.", -1);
        if (octets.length != 4 || !octets[0].equals("127")) {
            return false;
        }
        for (String octet : octets) {
            if (octet.isEmpty()
                    || octet.length() > 3
                    || !octet.chars().allMatch(Character::isDigit)
                    || Integer.parseInt(octet) > 255) {
                return false;
            }
        }
        return true;
    }
}
