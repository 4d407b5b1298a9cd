package io.wsguard.message;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A cheap necessary condition for an RE2 pattern to match: literal strings that every match
 * contains. RE2/J has no DFA; its NFA costs about 40 ns per byte for a pattern without a literal
 * prefix (measured: 34-54 µs per KiB for {@code (?i)\bon[a-z]+\s*=}), so a deny rule runs RE2/J
 * only on messages that hold all of its literals (the three XSS rules of the benchmark then cost
 * 0.76 µs on a 1 KiB chat message that holds none of them).
 *
 * <p>The condition is an OR over top-level alternatives of an AND of literals, read from the
 * pattern's syntax conservatively: anything the reader is unsure of contributes no literal, and a
 * pattern it cannot read at all gets no filter (RE2/J always runs). Under {@code (?i)} only ASCII
 * characters other than k and s become literals, because only their case folding is ASCII-only
 * (RE2 folds k to U+212A KELVIN SIGN and s to U+017F LONG S); they are compared ASCII-case-insensitively.
 * A property test checks the filter never rejects a message the pattern matches.
 */
final class LiteralFilter {

    /** No condition: the pattern may match anything. */
    static final LiteralFilter NONE = new LiteralFilter(null);

    private static final int MAX_BRANCHES = 16;
    private static final int MAX_LITERALS = 4;

    /** One literal: its chars (lower-cased when {@code ignoreCase}) and their UTF-8 bytes. */
    // Never compared or hashed (only sorted by rank and scanned for), so equals by array identity is unused.
    @SuppressWarnings("ArrayRecordComponent")
    record Literal(char[] chars, byte[] utf8, boolean ignoreCase, int anchor) {
        static Literal of(String text, boolean ignoreCase) {
            final byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
            return new Literal(text.toCharArray(), utf8, ignoreCase, rarest(utf8));
        }

        @Override
        public String toString() {
            return (ignoreCase ? "(?i)" : "") + new String(chars);
        }
    }

    /** OR of AND; null when there is no condition. */
    private final Literal[][] branches;

    private LiteralFilter(Literal[][] branches) {
        this.branches = branches;
    }

    /** The filter of {@code pattern}, which RE2/J has already compiled. */
    static LiteralFilter of(String pattern) {
        final List<List<Literal>> dnf;
        try {
            final Reader reader = new Reader(pattern);
            dnf = reader.alternation();
            if (reader.pos != pattern.length()) {
                return NONE;
            }
        } catch (Unsure e) {
            return NONE;
        }
        final Literal[][] out = new Literal[dnf.size()][];
        for (int b = 0; b < dnf.size(); b++) {
            if (dnf.get(b).isEmpty()) {
                return NONE;
            }
            // The literal with the rarest byte first: it is the likeliest to be absent. A few are enough.
            out[b] = dnf.get(b).stream()
                    .sorted(Comparator.comparingInt((Literal l) -> -rank(l.utf8()[l.anchor()]))
                            .thenComparingInt(l -> -l.chars().length))
                    .limit(MAX_LITERALS)
                    .toArray(Literal[]::new);
        }
        return new LiteralFilter(out);
    }

    /** Whether the UTF-8 text {@code buf[off, off+len)} holds every literal of some branch. */
    boolean mayMatch(byte[] buf, int off, int len) {
        if (branches == null) {
            return true;
        }
        for (Literal[] branch : branches) {
            boolean all = true;
            for (Literal literal : branch) {
                if (indexOf(buf, off, len, literal) < 0) {
                    all = false;
                    break;
                }
            }
            if (all) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code text} holds every literal of some branch. */
    boolean mayMatch(CharSequence text) {
        if (branches == null) {
            return true;
        }
        for (Literal[] branch : branches) {
            boolean all = true;
            for (Literal literal : branch) {
                if (indexOf(text, literal) < 0) {
                    all = false;
                    break;
                }
            }
            if (all) {
                return true;
            }
        }
        return false;
    }

    /**
     * ASCII bytes from most to least common in chat messages sent as JSON: English letters by
     * frequency, with JSON's own punctuation among the most common. A literal is searched for by its
     * least common byte, so the scan stops on few candidates.
     */
    private static final String COMMON = " etaoins\":,hrdlcumwfgypb.vk0123456789{}[]jxqz";

    /** The index in {@code utf8} of its least common byte. */
    private static int rarest(byte[] utf8) {
        int best = 0;
        for (int i = 1; i < utf8.length; i++) {
            if (rank(utf8[i]) > rank(utf8[best])) {
                best = i;
            }
        }
        return best;
    }

    /**
     * Higher is rarer: ASCII punctuation outside {@link #COMMON} rarest, then non-ASCII bytes, then by {@link #COMMON}.
     */
    private static int rank(byte b) {
        if (b < 0) {
            return COMMON.length() + 1;
        }
        final int common = COMMON.indexOf(Character.toLowerCase((char) b));
        return common < 0 ? COMMON.length() + 2 : common;
    }

    // UTF-8 is self-synchronizing and its multi-byte sequences hold no ASCII bytes, so a byte match
    // of a literal's encoding is a character match, and ASCII folding on bytes is exact.
    private static int indexOf(byte[] buf, int off, int len, Literal literal) {
        final byte[] needle = literal.utf8();
        final int anchor = literal.anchor();
        final boolean fold = literal.ignoreCase();
        // Candidates: where the needle's rarest byte (either case) sits; the whole needle is then compared.
        final byte rare = needle[anchor];
        final byte rareOther = fold && rare >= 'a' && rare <= 'z' ? (byte) (rare - 32) : rare;
        final int end = off + len - needle.length + anchor + 1;
        int from = off + anchor;
        outer:
        while (from < end) {
            final int i = indexOfEither(buf, from, end, rare, rareOther);
            if (i < 0) {
                return -1;
            }
            from = i + 1;
            final int start = i - anchor;
            for (int j = 0; j < needle.length; j++) {
                final byte c = buf[start + j];
                if ((fold ? lower(c) : c) != needle[j]) {
                    continue outer;
                }
            }
            return start;
        }
        return -1;
    }

    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long ONES = 0x0101010101010101L;
    private static final long HIGHS = 0x8080808080808080L;

    /**
     * The first index in {@code [from, to)} holding byte {@code a} or {@code b}, or -1. Eight bytes
     * at a time (SWAR): {@code (x - ONES) & ~x & HIGHS} flags the lowest zero byte of {@code x}
     * exactly (a borrow only runs upwards from it), so the lowest flag is the first match. With the
     * rarest-byte anchor it took three XSS rules on a 1 KiB chat message from 3.0 to 0.76 µs.
     */
    static int indexOfEither(byte[] buf, int from, int to, byte a, byte b) {
        final long pa = ONES * (a & 0xFF);
        final long pb = ONES * (b & 0xFF);
        int i = from;
        for (; i + 8 <= to; i += 8) {
            final long v = (long) LONGS.get(buf, i);
            final long xa = v ^ pa;
            final long xb = v ^ pb;
            final long hits = (((xa - ONES) & ~xa) | ((xb - ONES) & ~xb)) & HIGHS;
            if (hits != 0) {
                return i + (Long.numberOfTrailingZeros(hits) >>> 3);
            }
        }
        for (; i < to; i++) {
            if (buf[i] == a || buf[i] == b) {
                return i;
            }
        }
        return -1;
    }

    private static int indexOf(CharSequence text, Literal literal) {
        final char[] needle = literal.chars();
        final int last = text.length() - needle.length;
        final boolean fold = literal.ignoreCase();
        outer:
        for (int i = 0; i <= last; i++) {
            for (int j = 0; j < needle.length; j++) {
                final char c = text.charAt(i + j);
                if ((fold ? lower(c) : c) != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static byte lower(byte b) {
        return b >= 'A' && b <= 'Z' ? (byte) (b + 32) : b;
    }

    private static char lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c + 32) : c;
    }

    @Override
    public String toString() {
        if (branches == null) {
            return "NONE";
        }
        final List<String> out = new ArrayList<>();
        for (Literal[] branch : branches) {
            out.add(List.of(branch).toString());
        }
        return String.join(" | ", out);
    }

    /** The reader met something it does not model: no filter. */
    private static final class Unsure extends Exception {
        private static final long serialVersionUID = 1L;

        Unsure() {
            super(null, null, false, false);
        }
    }

    /**
     * A reader of RE2 syntax that keeps only what it needs: literals, groups, alternation, quantifiers
     * and the {@code i} flag. RE2/J has validated the pattern already; doubts throw {@link Unsure}.
     */
    private static final class Reader {
        private final String re;
        int pos;
        /** Flags last until the end of the enclosing group, across '|' (as in Go's and RE2's parsers). */
        private boolean ignoreCase;

        Reader(String re) {
            this.re = re;
        }

        /** alternation := sequence ('|' sequence)* */
        List<List<Literal>> alternation() throws Unsure {
            final List<List<Literal>> out = new ArrayList<>(sequence());
            while (pos < re.length() && re.charAt(pos) == '|') {
                pos++;
                out.addAll(sequence());
                if (out.size() > MAX_BRANCHES) {
                    throw new Unsure();
                }
            }
            return out;
        }

        /** A DNF for one concatenation: its literal runs, AND-ed with required groups' conditions. */
        private List<List<Literal>> sequence() throws Unsure {
            List<List<Literal>> dnf = new ArrayList<>();
            dnf.add(new ArrayList<>());
            final StringBuilder run = new StringBuilder();
            boolean runFold = ignoreCase;
            while (pos < re.length()) {
                final char c = re.charAt(pos);
                if (c == '|' || c == ')') {
                    break;
                }
                // One atom: a literal code point (>= 0), a group (its DNF) or something else.
                int literal = -1;
                List<List<Literal>> group = null;
                if (c == '(') {
                    if (flagGroup()) {
                        flush(run, runFold, dnf);
                        continue;
                    }
                    group = group();
                } else if (c == '[') {
                    skipClass();
                } else if (c == '\\') {
                    literal = escape();
                } else if (c == '.' || c == '^' || c == '$') {
                    pos++;
                } else if (c == '*' || c == '+' || c == '?') {
                    throw new Unsure();
                } else if (c == '{' && repeatAt(pos) != null) {
                    throw new Unsure();
                } else {
                    literal = re.codePointAt(pos);
                    pos += Character.charCount(literal);
                }
                final int min = quantifier();
                final boolean required = min != 0;
                if (literal >= 0 && required && usable(literal)) {
                    if (run.length() > 0 && runFold != ignoreCase) {
                        flush(run, runFold, dnf);
                    }
                    if (run.length() == 0) {
                        runFold = ignoreCase;
                    }
                    run.appendCodePoint(ignoreCase ? lower((char) literal) : literal);
                    if (min > 0) {
                        // Repeated: the char is there, but what follows is not adjacent to the run.
                        flush(run, runFold, dnf);
                    }
                } else {
                    flush(run, runFold, dnf);
                    if (group != null && required) {
                        dnf = and(dnf, group);
                    }
                }
            }
            flush(run, runFold, dnf);
            return dnf;
        }

        /** Whether a literal code point can be searched for under the current flags. */
        private boolean usable(int cp) {
            if (!ignoreCase) {
                return true;
            }
            return cp < 0x80 && "kKsS".indexOf(cp) < 0;
        }

        private static void flush(StringBuilder run, boolean fold, List<List<Literal>> dnf) {
            if (run.length() == 0) {
                return;
            }
            final Literal literal = Literal.of(run.toString(), fold);
            for (List<Literal> branch : dnf) {
                branch.add(literal);
            }
            run.setLength(0);
        }

        /** A AND B, distributed; when that grows too large, B's condition is dropped (weaker, still correct). */
        private static List<List<Literal>> and(List<List<Literal>> a, List<List<Literal>> b) {
            if (a.size() * b.size() > MAX_BRANCHES) {
                return a;
            }
            final List<List<Literal>> out = new ArrayList<>();
            for (List<Literal> x : a) {
                for (List<Literal> y : b) {
                    final List<Literal> both = new ArrayList<>(x);
                    both.addAll(y);
                    out.add(both);
                }
            }
            return out;
        }

        /** {@code (?flags)} alone: applies them and returns true; leaves other groups alone. */
        private boolean flagGroup() throws Unsure {
            if (!re.startsWith("(?", pos)) {
                return false;
            }
            int i = pos + 2;
            boolean negate = false;
            boolean fold = ignoreCase;
            while (i < re.length()) {
                final char c = re.charAt(i);
                if (c == ')') {
                    ignoreCase = fold;
                    pos = i + 1;
                    return true;
                }
                if (c == ':') {
                    return false;
                }
                if (c == '-') {
                    negate = true;
                } else if (c == 'i') {
                    fold = !negate;
                } else if (c != 'm' && c != 's' && c != 'U') {
                    return false;
                }
                i++;
            }
            throw new Unsure();
        }

        /** {@code (…)}, {@code (?:…)}, {@code (?flags:…)}, {@code (?P<name>…)} or {@code (?<name>…)}. */
        private List<List<Literal>> group() throws Unsure {
            final boolean outer = ignoreCase;
            pos++;
            if (pos < re.length() && re.charAt(pos) == '?') {
                pos++;
                if (re.startsWith("P<", pos) || re.startsWith("<", pos)) {
                    final int close = re.indexOf('>', pos);
                    if (close < 0) {
                        throw new Unsure();
                    }
                    pos = close + 1;
                } else {
                    boolean negate = false;
                    while (pos < re.length() && re.charAt(pos) != ':') {
                        final char c = re.charAt(pos);
                        if (c == '-') {
                            negate = true;
                        } else if (c == 'i') {
                            ignoreCase = !negate;
                        } else if (c != 'm' && c != 's' && c != 'U') {
                            throw new Unsure();
                        }
                        pos++;
                    }
                    if (pos >= re.length()) {
                        throw new Unsure();
                    }
                    pos++;
                }
            }
            final List<List<Literal>> inner = alternation();
            if (pos >= re.length() || re.charAt(pos) != ')') {
                throw new Unsure();
            }
            pos++;
            ignoreCase = outer;
            for (List<Literal> branch : inner) {
                if (branch.isEmpty()) {
                    // One alternative needs no literal: the group needs none.
                    final List<List<Literal>> none = new ArrayList<>();
                    none.add(new ArrayList<>());
                    return none;
                }
            }
            return inner;
        }

        /** Skips {@code […]}, with escapes, {@code [:alpha:]} and a leading {@code ]} or {@code ^]}. */
        private void skipClass() throws Unsure {
            int i = pos + 1;
            if (i < re.length() && re.charAt(i) == '^') {
                i++;
            }
            if (i < re.length() && re.charAt(i) == ']') {
                i++;
            }
            while (i < re.length()) {
                final char c = re.charAt(i);
                if (c == ']') {
                    pos = i + 1;
                    return;
                }
                if (c == '\\') {
                    i = skipEscapeBody(i + 1);
                } else if (c == '[' && re.startsWith("[:", i)) {
                    final int close = re.indexOf(":]", i + 2);
                    if (close < 0) {
                        throw new Unsure();
                    }
                    i = close + 2;
                } else {
                    i++;
                }
            }
            throw new Unsure();
        }

        /**
         * An escape at {@code pos}: the literal code point of an escaped punctuation mark, or -1 for
         * classes, assertions, {@code \Q…\E} quotes (not used as literals) and the like.
         */
        private int escape() throws Unsure {
            if (pos + 1 >= re.length()) {
                throw new Unsure();
            }
            final char c = re.charAt(pos + 1);
            if (c < 0x80 && !Character.isLetterOrDigit(c)) {
                pos += 2;
                return c;
            }
            if (c == 'Q') {
                final int end = re.indexOf("\\E", pos + 2);
                pos = end < 0 ? re.length() : end + 2;
                return -1;
            }
            if (c >= '0' && c <= '9') {
                throw new Unsure();
            }
            pos = skipEscapeBody(pos + 1);
            return -1;
        }

        /**
         * The index after the escape whose letter is at {@code i}: {@code \x{…}}, {@code \pL}, {@code \p{…}},
         * {@code \d}, ….
         */
        private int skipEscapeBody(int i) throws Unsure {
            if (i >= re.length()) {
                throw new Unsure();
            }
            final char c = re.charAt(i);
            if (c == 'x' || c == 'p' || c == 'P') {
                if (i + 1 < re.length() && re.charAt(i + 1) == '{') {
                    final int close = re.indexOf('}', i + 2);
                    if (close < 0) {
                        throw new Unsure();
                    }
                    return close + 1;
                }
                return Math.min(re.length(), i + (c == 'x' ? 3 : 2));
            }
            if (c >= '0' && c <= '7') {
                int end = i;
                while (end < re.length() && end - i < 3 && re.charAt(end) >= '0' && re.charAt(end) <= '7') {
                    end++;
                }
                return end;
            }
            return i + 1;
        }

        /** Reads a quantifier at {@code pos}, if any; returns its minimum, or -1 when there is none. */
        private int quantifier() {
            if (pos >= re.length()) {
                return -1;
            }
            final char c = re.charAt(pos);
            final int min;
            if (c == '*' || c == '?') {
                min = 0;
                pos++;
            } else if (c == '+') {
                min = 1;
                pos++;
            } else if (c == '{' && repeatAt(pos) != null) {
                final int[] repeat = repeatAt(pos);
                min = repeat[0];
                pos = repeat[1];
            } else {
                return -1;
            }
            if (pos < re.length() && re.charAt(pos) == '?') {
                pos++;
            }
            return min;
        }

        /**
         * {@code {n}}, {@code {n,}} or {@code {n,m}} at {@code i}: {minimum, index after}; else null (a literal '{').
         */
        private int[] repeatAt(int i) {
            int j = i + 1;
            int n = 0;
            int digits = 0;
            while (j < re.length() && Character.isDigit(re.charAt(j)) && re.charAt(j) < 0x80) {
                n = Math.min(100_000, n * 10 + (re.charAt(j) - '0'));
                j++;
                digits++;
            }
            if (digits == 0 || j >= re.length()) {
                return null;
            }
            if (re.charAt(j) == ',') {
                j++;
                while (j < re.length() && Character.isDigit(re.charAt(j)) && re.charAt(j) < 0x80) {
                    j++;
                }
            }
            if (j >= re.length() || re.charAt(j) != '}') {
                return null;
            }
            return new int[] {n, j + 1};
        }
    }
}
