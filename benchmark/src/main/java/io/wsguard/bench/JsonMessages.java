package io.wsguard.bench;

import java.nio.charset.StandardCharsets;
import java.util.Random;

/**
 * The pre-generated pool of JSON chat messages that scenario g sends as text:
 * {@code {"type":"chat","room":"r12","text":"..."}}, each message's total size uniformly random in
 * {@code [minSize, maxSize]} bytes, from a seeded {@link Random} (the same seed gives the same pool).
 *
 * <p>The text is ordinary words, letters, digits, single spaces and the punctuation {@code .,!?-}:
 * nothing a JSON string must escape, nothing an HTML sanitizer strips, no {@code <}, no leading,
 * trailing or double spaces. So the proxy's inspection passes every message unchanged and the echo
 * must be byte-identical to what was sent. All ASCII: one character is one byte.
 */
final class JsonMessages {

    private static final String[] WORDS = {
        "hello",
        "world",
        "chat",
        "room",
        "message",
        "the",
        "a",
        "and",
        "to",
        "of",
        "is",
        "it",
        "we",
        "you",
        "meet",
        "at",
        "noon",
        "ok",
        "sure",
        "thanks",
        "see",
        "later",
        "build",
        "green",
        "deploy",
        "friday",
        "coffee",
        "lunch",
        "release",
        "v2",
        "r2d2",
        "42",
        "2026",
        "ticket",
        "WS-1138",
        "review",
        "done",
        "Alice",
        "Bob",
        "Carol",
        "proxy",
        "latency",
        "p99",
        "looks",
        "good",
        "to",
        "me",
        "why",
        "not",
        "yes",
        "no",
        "maybe",
        "tomorrow",
        "today",
        "agenda",
        "notes",
        "x86",
        "arm64",
        "JSON",
        "schema",
        "fine",
    };
    private static final String PUNCTUATION = ".,!?";
    private static final String LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    private JsonMessages() {}

    /**
     * {@code count} messages, sizes uniform in {@code [minSize, maxSize]}; minSize must leave room for the envelope.
     */
    static String[] generate(long seed, int count, int minSize, int maxSize) {
        if (count < 1) {
            throw new IllegalArgumentException("--pool: " + count + " (expected: ≥ 1)");
        }
        if (minSize < 48 || maxSize < minSize) {
            throw new IllegalArgumentException(
                    "--min-size/--max-size: " + minSize + "/" + maxSize + " (expected: 48 ≤ min ≤ max)");
        }
        final Random random = new Random(seed);
        final String[] pool = new String[count];
        for (int i = 0; i < count; i++) {
            final int size = minSize + random.nextInt(maxSize - minSize + 1);
            final String head = "{\"type\":\"chat\",\"room\":\"r" + random.nextInt(100) + "\",\"text\":\"";
            final String tail = "\"}";
            final String message = head + text(random, size - head.length() - tail.length()) + tail;
            if (message.getBytes(StandardCharsets.UTF_8).length != size) {
                throw new IllegalStateException("generated " + message.length() + " bytes, wanted " + size);
            }
            pool[i] = message;
        }
        return pool;
    }

    /** Mean size in bytes of the pool's messages. */
    static double meanSize(String[] pool) {
        long total = 0;
        for (String m : pool) {
            total += m.length();
        }
        return total / (double) pool.length;
    }

    /** Exactly {@code length} characters of words separated by single spaces, ending in a letter or digit. */
    private static String text(Random random, int length) {
        final StringBuilder sb = new StringBuilder(length);
        while (sb.length() < length) {
            String word = WORDS[random.nextInt(WORDS.length)];
            final int p = random.nextInt(10);
            if (p == 0) {
                word += PUNCTUATION.charAt(random.nextInt(PUNCTUATION.length()));
            } else if (p == 1) {
                word += "-" + WORDS[random.nextInt(WORDS.length)];
            }
            final int need = sb.isEmpty() ? word.length() : word.length() + 1;
            final int left = length - sb.length();
            if (need <= left - 1 || (need == left && Character.isLetterOrDigit(word.charAt(word.length() - 1)))) {
                if (!sb.isEmpty()) {
                    sb.append(' ');
                }
                sb.append(word);
            } else if (sb.isEmpty() || left == 1) {
                fill(random, sb, left); // a single filler word, or one letter stuck to the last word
            } else {
                sb.append(' ');
                fill(random, sb, left - 1);
            }
        }
        return sb.toString();
    }

    private static void fill(Random random, StringBuilder sb, int n) {
        for (int i = 0; i < n; i++) {
            sb.append(LETTERS.charAt(random.nextInt(LETTERS.length())));
        }
    }
}
