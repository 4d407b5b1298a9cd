package io.wsguard.message;

import java.util.Arrays;
import java.util.HashMap;

/**
 * The keys of the JSON objects a {@link JsonScan} is inside, so that an object holding two keys
 * equal under case-insensitive comparison is refused: {@code {"text":"hi","Text":"<script>…"}}.
 * Go's encoding/json (and Jackson with {@code ACCEPT_CASE_INSENSITIVE_PROPERTIES}, .NET with
 * {@code PropertyNameCaseInsensitive}) binds both keys to one field and keeps the last, so the schema
 * and the sanitizer, which look at {@code text}, would pass a value the upstream never acts on.
 * Exact duplicates are the same clash with equal case: they are found here too, instead of by
 * Jackson's {@code STRICT_DUPLICATE_DETECTION}, which allocates a set for every object of three keys
 * or more.
 *
 * <p>Keys are compared as {@link String#equalsIgnoreCase} does: code point by code point, upper case
 * then lower case (Unicode simple case folding, so the Kelvin sign matches {@code k} and {@code ſ}
 * matches {@code s}, while {@code ß} never matches {@code SS}). An object's keys are compared pairwise
 * up to {@link #PAIRWISE} of them, the usual case, without allocating; past that its keys move to a
 * map keyed by their folded form, so a hostile object of thousands of keys is checked in linear time.
 *
 * <p>One instance per thread, reused by every scan that runs on it; {@link #clear()} after each scan.
 */
final class ObjectKeys {

    /** Up to this many keys an object's keys are compared pairwise: at most 120 comparisons, mostly of lengths. */
    static final int PAIRWISE = 16;

    private static final ThreadLocal<ObjectKeys> PER_THREAD = ThreadLocal.withInitial(ObjectKeys::new);

    /** What {@link #add} found. */
    enum Clash {
        NONE,
        EXACT,
        CASE_ONLY
    }

    /** The keys of the open objects still compared pairwise, outermost object first. */
    private String[] keys = new String[4 * PAIRWISE];

    private int count;
    /** Per open object, outermost first: where its keys start in {@link #keys}. */
    private int[] starts = new int[16];
    /** Per open object: its keys by folded form once it has more than {@link #PAIRWISE}, else null. */
    private Folded[] folded = new Folded[16];

    private int open;

    private ObjectKeys() {}

    static ObjectKeys forThisThread() {
        return PER_THREAD.get();
    }

    /** An object starts. */
    void open() {
        if (open == starts.length) {
            starts = Arrays.copyOf(starts, open * 2);
            folded = Arrays.copyOf(folded, open * 2);
        }
        starts[open] = count;
        folded[open] = null;
        open++;
    }

    /** The innermost open object ends. */
    void close() {
        open--;
        release(starts[open]);
        folded[open] = null;
    }

    /** {@code key} is the next key of the innermost open object: whether it clashes with one before it. */
    Clash add(String key) {
        final int top = open - 1;
        if (folded[top] != null) {
            return folded[top].add(key);
        }
        final int start = starts[top];
        for (int i = start; i < count; i++) {
            final String seen = keys[i];
            if (seen.equalsIgnoreCase(key)) {
                return seen.equals(key) ? Clash.EXACT : Clash.CASE_ONLY;
            }
        }
        if (count - start == PAIRWISE) {
            final Folded map = new Folded();
            for (int i = start; i < count; i++) {
                map.add(keys[i]);
            }
            map.add(key);
            release(start);
            folded[top] = map;
            return Clash.NONE;
        }
        if (count == keys.length) {
            keys = Arrays.copyOf(keys, count * 2);
        }
        keys[count++] = key;
        return Clash.NONE;
    }

    /** Forgets everything, also what a scan that stopped midway left: the next scan starts empty. */
    void clear() {
        release(0);
        Arrays.fill(folded, 0, open, null);
        open = 0;
    }

    /** Drops the keys from {@code start} on, so that the thread does not keep a message's strings alive. */
    private void release(int start) {
        Arrays.fill(keys, start, count, null);
        count = start;
    }

    /** One large object's keys by folded form. */
    private static final class Folded {
        private final HashMap<String, String> byFolded = new HashMap<>();

        Clash add(String key) {
            final String seen = byFolded.putIfAbsent(fold(key), key);
            if (seen == null) {
                return Clash.NONE;
            }
            return seen.equals(key) ? Clash.EXACT : Clash.CASE_ONLY;
        }

        /**
         * {@code key} with each code point folded as {@link String#equalsIgnoreCase} compares them: upper, then lower
         * case.
         */
        private static String fold(String key) {
            final StringBuilder out = new StringBuilder(key.length());
            key.codePoints().forEach(c -> out.appendCodePoint(Character.toLowerCase(Character.toUpperCase(c))));
            return out.toString();
        }
    }
}
