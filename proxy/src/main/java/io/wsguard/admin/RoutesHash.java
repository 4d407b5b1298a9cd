package io.wsguard.admin;

import io.wsguard.policy.RoutePolicy;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The digest instances of a cluster compare to find out whether they run the same routes: SHA-256
 * over the bound {@code routes} section as canonical JSON (keys sorted, in the routes' own order)
 * in which every file a route names (schemas, keys, JWKS files, CA bundles) stands as the SHA-256 of
 * its content.
 *
 * <p>So two instances agree when their routes and the files behind them are equal, whatever their
 * listener ports, admin ports or the directories their policy files sit in; a schema edited on one
 * machine only makes them differ. Secrets ({@code auth.jwt.secret}, {@code upstream.headers.set}
 * values) count as {@code <redacted>}, as in {@code GET /admin/policy}: the digest is shown on the
 * admin port and stored in Redis, where a hash over a short secret could be reversed by guessing.
 */
public final class RoutesHash {

    private RoutesHash() {}

    /** The hex SHA-256 of {@code routes} as described above; reads the files it names. */
    public static String of(List<RoutePolicy> routes) {
        return sha256Hex(PolicyJson.canonical(routes));
    }

    static String sha256Hex(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }
}
