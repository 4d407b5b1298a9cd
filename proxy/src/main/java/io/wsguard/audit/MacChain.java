package io.wsguard.audit;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The audit log's integrity chain (README, Audit log, {@code audit.integrityKey}).
 *
 * <p>Definition. A sealed line is {@code body + ",\"mac\":\"" + mac + "\"}"}, where {@code body} is
 * the line's JSON object as formatted without a mac, minus its closing {@code }}, followed by
 * {@code ,"seq":N}, and
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
 * <p>The sequence number {@code seq} is 0 on the first line of a chain and one more on each line
 * after; across rotations and restarts it continues from the last line on disk, like the mac. The
 * mac alone cannot show lines cut from either end of a chain: with no earlier file, the first line
 * left is taken as the anchor, and a chain cut short is still a chain. {@code seq} shows the first
 * (a chain that starts at 57, not 0), and the head ({@link Head}: last {@code seq} and its mac),
 * recorded away from the host, shows the second. Lines written before wsguard numbered its chain
 * have no {@code seq}; a writer continuing such a chain starts at 0.
 *
 * <p>An instance carries the chain's state and is used by the one writer thread; not thread-safe.
 * {@link #verify} is static and thread-safe.
 */
public final class MacChain {

    static final String MAC_PREFIX = ",\"mac\":\"";
    static final String SEQ_PREFIX = ",\"seq\":";
    static final int MAC_HEX_LENGTH = 64;
    /** {@code ,"mac":"} + 64 hex digits + {@code "}}. */
    static final int SUFFIX_LENGTH = MAC_PREFIX.length() + MAC_HEX_LENGTH + 2;
    /** Digits a sequence number may have: 18 keep it inside a long, and no log reaches 10^18 lines. */
    private static final int MAX_SEQ_DIGITS = 18;

    /** The last line of a chain: its sequence number and its mac, what an operator records elsewhere. */
    public record Head(long seq, String mac) {}

    private final Mac mac;
    private String prevMac;
    private long nextSeq;

    /**
     * A chain continuing after {@code lastLine} (the last line on disk), or a new one when it is null or not sealed.
     */
    MacChain(byte[] key, String lastLine) {
        this.mac = newMac(key);
        final String lastMac = macOf(lastLine);
        this.prevMac = lastMac == null ? "" : lastMac;
        final long lastSeq = lastMac == null ? -1 : seqOf(lastLine);
        this.nextSeq = lastSeq < 0 ? 0 : lastSeq + 1;
    }

    /** Appends the sequence number and the mac to {@code json}, one JSON object, and advances the chain. */
    String seal(String json) {
        final String body = json.substring(0, json.length() - 1) + SEQ_PREFIX + nextSeq;
        prevMac = compute(mac, prevMac, body);
        nextSeq++;
        return body + MAC_PREFIX + prevMac + "\"}";
    }

    /** The last line sealed (or found on disk when the chain was continued), or null before the first. */
    Head head() {
        return nextSeq == 0 ? null : new Head(nextSeq - 1, prevMac);
    }

    /**
     * The sequence number of a sealed line, or -1 if it has none. It is the body's last field, right
     * before the mac: string values end in a quote, so a body ending in {@code ,"seq":} and digits
     * ends in this field.
     */
    public static long seqOf(String line) {
        if (macOf(line) == null) {
            return -1;
        }
        final int end = line.length() - SUFFIX_LENGTH;
        int digits = end;
        while (digits > 0 && Character.isDigit(line.charAt(digits - 1)) && end - digits < MAX_SEQ_DIGITS) {
            digits--;
        }
        if (digits == end || !line.startsWith(SEQ_PREFIX, digits - SEQ_PREFIX.length())) {
            return -1;
        }
        return Long.parseLong(line, digits, end, 10);
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
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
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
     * Checks {@code lines} as a chain continuing from {@code prevMac}: a new chain (sequence numbers
     * from 0) when it is {@code ""}, any start when it is {@code null}.
     */
    public static Result verify(Iterable<String> lines, byte[] key, String prevMac) {
        return verify(lines, key, prevMac, prevMac == null ? -1 : prevMac.isEmpty() ? 0 : -1, -1);
    }

    /**
     * Checks {@code lines} as a chain continuing from {@code prevMac}.
     *
     * @param prevMac the mac of the line before the first one, {@code ""} for the start of the
     *     chain, or {@code null} when it is unknown (a file whose predecessor was rotated away): the
     *     first line is then taken as the chain's anchor, its own mac is trusted and checking starts
     *     with the second line
     * @param firstSeq the sequence number the first line must carry if it carries one (0 for a new
     *     chain, the predecessor's last one plus 1), or -1 when any will do
     * @param anchorSeq a sequence number whose line's mac the result reports ({@link Result#anchorMac}), or -1
     */
    public static Result verify(Iterable<String> lines, byte[] key, String prevMac, long firstSeq, long anchorSeq) {
        final Mac mac = newMac(key);
        String prev = prevMac;
        long number = 0;
        long expectedSeq = firstSeq;
        long first = -1;
        long last = -1;
        long unsequenced = 0;
        String anchorMac = null;
        for (String line : lines) {
            number++;
            final String stored = macOf(line);
            if (stored == null) {
                return Result.broken(number, line, "no mac at its end");
            }
            final long seq = seqOf(line);
            if (seq >= 0 && expectedSeq >= 0 && seq != expectedSeq) {
                return Result.broken(
                        number,
                        line,
                        number == 1 && seq > expectedSeq
                                ? "the chain starts at sequence number " + seq + ", not " + expectedSeq
                                        + ": earlier lines are missing"
                                : "sequence number " + seq + " where " + expectedSeq + " was due");
            }
            if (prev != null) {
                final String body = line.substring(0, line.length() - SUFFIX_LENGTH);
                final String expected = compute(mac, prev, body);
                if (!MessageDigest.isEqual(
                        expected.getBytes(StandardCharsets.US_ASCII), stored.getBytes(StandardCharsets.US_ASCII))) {
                    return Result.broken(number, line, "its mac does not match");
                }
            }
            if (seq < 0) {
                unsequenced++;
                expectedSeq = 0; // a writer continuing from this line numbers its next one 0
            } else {
                if (first < 0) {
                    first = seq;
                }
                last = seq;
                expectedSeq = seq + 1;
                if (seq == anchorSeq) {
                    anchorMac = stored;
                }
            }
            prev = stored;
        }
        return new Result(true, number, 0, null, null, first, last, prev, unsequenced, anchorMac);
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
     * @param problem what is wrong with that line, or {@code null} when ok
     * @param firstSeq the first sequence number found, or -1 (none, or not ok)
     * @param lastSeq the last sequence number found, or -1 (none, or not ok)
     * @param lastMac the last line's mac, or {@code null} (no lines, or not ok)
     * @param unsequenced how many lines carry no sequence number (written before wsguard numbered them)
     * @param anchorMac the mac of the line with the sequence number asked for, or {@code null}
     */
    public record Result(
            boolean ok,
            long lines,
            long brokenLine,
            String line,
            String problem,
            long firstSeq,
            long lastSeq,
            String lastMac,
            long unsequenced,
            String anchorMac) {

        static Result broken(long number, String line, String problem) {
            return new Result(false, number, number, line, problem, -1, -1, null, 0, null);
        }
    }
}
