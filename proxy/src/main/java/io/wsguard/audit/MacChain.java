package io.wsguard.audit;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The audit log's integrity chain (SPEC §5, {@code audit.integrityKey}).
 *
 * <p>Definition. A sealed line is {@code body + ",\"mac\":\"" + mac + "\"}"}, where {@code body} is
 * the line's JSON object as formatted without a mac, minus its closing {@code }}, and
 * <pre>
 *   mac = lowercase-hex( HMAC-SHA256( key, UTF-8( prevMac + body ) ) )
 * </pre>
 * {@code key} is the UTF-8 bytes of {@code integrityKey}; {@code prevMac} is the previous line's
 * 64-character mac, or {@code ""} for the first line ever. So {@code mac} is always the last field,
 * and {@code body} is exactly the line minus its last 74 characters ({@code ,"mac":"}, 64 hex
 * digits, {@code "}}). The chain runs on across rotated files and restarts: the writer continues
 * from the last mac on disk. Removing, reordering, inserting or editing a line breaks the chain at
 * that line (or at the one after a removal).
 *
 * <p>An instance carries the chain's state and is used by the one writer thread; not thread-safe.
 * {@link #verify} is static and thread-safe.
 */
public final class MacChain {

    static final String MAC_PREFIX = ",\"mac\":\"";
    static final int MAC_HEX_LENGTH = 64;
    /** {@code ,"mac":"} + 64 hex digits + {@code "}}. */
    static final int SUFFIX_LENGTH = MAC_PREFIX.length() + MAC_HEX_LENGTH + 2;

    private final Mac mac;
    private String prevMac;

    MacChain(byte[] key, String prevMac) {
        this.mac = newMac(key);
        this.prevMac = prevMac == null ? "" : prevMac;
    }

    /** Appends the mac to {@code json}, one JSON object, and advances the chain. */
    String seal(String json) {
        final String body = json.substring(0, json.length() - 1);
        prevMac = compute(mac, prevMac, body);
        return body + MAC_PREFIX + prevMac + "\"}";
    }

    /** The mac of a sealed line, or {@code null} if it does not end like one. */
    public static String macOf(String line) {
        if (line == null || line.length() < SUFFIX_LENGTH + 1 || !line.endsWith("\"}")) {
            return null;
        }
        final int start = line.length() - SUFFIX_LENGTH;
        if (!line.startsWith(MAC_PREFIX, start)) {
            return null;
        }
        final String hex = line.substring(start + MAC_PREFIX.length(), line.length() - 2);
        for (int i = 0; i < hex.length(); i++) {
            final char c = hex.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
                return null;
            }
        }
        return hex;
    }

    /** Checks a chain that starts with the first line ever written ({@code prevMac} is {@code ""}). */
    public static Result verify(Iterable<String> lines, byte[] key) {
        return verify(lines, key, "");
    }

    /**
     * Checks {@code lines} as a chain continuing from {@code prevMac}.
     *
     * @param prevMac the mac of the line before the first one, {@code ""} for the start of the
     *     chain, or {@code null} when it is unknown (a file whose predecessor was rotated away): the
     *     first line is then taken as the chain's anchor, its own mac is trusted and checking starts
     *     with the second line
     */
    public static Result verify(Iterable<String> lines, byte[] key, String prevMac) {
        final Mac mac = newMac(key);
        String prev = prevMac;
        long number = 0;
        for (String line : lines) {
            number++;
            final String stored = macOf(line);
            if (stored == null) {
                return Result.broken(number, line);
            }
            if (prev != null) {
                final String body = line.substring(0, line.length() - SUFFIX_LENGTH);
                final String expected = compute(mac, prev, body);
                if (!MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII),
                                           stored.getBytes(StandardCharsets.US_ASCII))) {
                    return Result.broken(number, line);
                }
            }
            prev = stored;
        }
        return Result.ok(number);
    }

    private static String compute(Mac mac, String prevMac, String body) {
        mac.update(prevMac.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(mac.doFinal(body.getBytes(StandardCharsets.UTF_8)));
    }

    private static Mac newMac(byte[] key) {
        try {
            final Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac;
        } catch (GeneralSecurityException e) {
            // Every Java 17 runtime has HmacSHA256; a failure here is a broken JDK, or an empty key.
            throw new IllegalStateException("HmacSHA256 unavailable: " + e.getMessage(), e);
        }
    }

    /**
     * The outcome of {@link #verify}.
     *
     * @param ok whether every line checked out
     * @param lines how many lines were read (all of them when ok)
     * @param brokenLine the 1-based number of the first broken line, or 0 when ok
     * @param line the text of the first broken line, or {@code null} when ok
     */
    public record Result(boolean ok, long lines, long brokenLine, String line) {
        static Result ok(long lines) {
            return new Result(true, lines, 0, null);
        }

        static Result broken(long number, String line) {
            return new Result(false, number, number, line);
        }
    }
}
