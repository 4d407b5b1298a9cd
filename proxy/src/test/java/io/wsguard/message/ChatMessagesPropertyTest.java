package io.wsguard.message;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Verdict;
import io.wsguard.policy.MessagePolicy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.json.JsonMapper;

/**
 * Generated traffic through every rule at once: valid chat messages pass byte for byte, and no
 * mutation of them (flips, truncations, insertions) makes a check throw or fail internally.
 */
class ChatMessagesPropertyTest {

    @TempDir
    static Path dir;

    static ContentRules rules;

    @BeforeAll
    static void compile() {
        rules = ContentRules.compile(Rules.messages(
                Rules.jsonPolicy(Rules.write(dir, "chat.json", Rules.CHAT_SCHEMA), true),
                // Rooms are [a-z0-9-]: text the sanitizer leaves alone, so a valid message needs no rewrite.
                Rules.sanitize(MessagePolicy.Html.STRIP, "$.room"),
                Rules.denyRules(
                        "word",
                        "(?i)forbidden-word-xyzzy",
                        "anchored",
                        "^\\s*\\{\\s*\"admin\"",
                        "tag",
                        "(?i)<ifr[a]me")));
    }

    @Test
    void validMessagesPassUnchangedAndMutationsNeverBreakAChecker() {
        final SplittableRandom random = new SplittableRandom(20261123);
        final JsonMapper mapper = JsonMapper.builder().build();
        int verdicts = 0;
        for (int m = 0; m < 1_000; m++) {
            final String message = chatMessage(random);
            final byte[] bytes = message.getBytes(StandardCharsets.UTF_8);
            // The generator writes JSON the way clients do; Jackson agrees it is one valid document.
            assertThat(mapper.readTree(message).get("type").stringValue()).isEqualTo("chat");
            assertThat(rules.inspectText(bytes, 0, bytes.length))
                    .as("message %d", m)
                    .isEqualTo(Verdict.ALLOW);
            for (int k = 0; k < 20; k++) {
                final byte[] mutated = mutate(random, bytes);
                final Verdict verdict = rules.inspectText(mutated, 0, mutated.length);
                assertThat(verdict).isNotNull();
                assertThat(Rules.detail(verdict)).doesNotStartWith("content check failed");
                verdicts++;
            }
        }
        assertThat(verdicts).isEqualTo(20_000);
    }

    @Test
    void oneInstanceServesManyThreadsAtOnce() throws Exception {
        // Shared by every connection of a route: compiled schema, patterns and policies hold no per-call state.
        final SplittableRandom random = new SplittableRandom(7);
        final List<byte[]> valid = new ArrayList<>();
        final List<byte[]> invalid = new ArrayList<>();
        for (int i = 0; i < 500; i++) {
            final String message = chatMessage(random);
            valid.add(message.getBytes(StandardCharsets.UTF_8));
            invalid.add(message.replace("\"chat\"", "\"chat\",\"extra\":1").getBytes(StandardCharsets.UTF_8));
        }
        final java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            final List<java.util.concurrent.Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                results.add(pool.submit(() -> {
                    int wrong = 0;
                    for (int round = 0; round < 10; round++) {
                        for (int i = 0; i < valid.size(); i++) {
                            wrong += rules.inspectText(valid.get(i), 0, valid.get(i).length) == Verdict.ALLOW ? 0 : 1;
                            final Verdict refused = rules.inspectText(invalid.get(i), 0, invalid.get(i).length);
                            wrong += Rules.detail(refused).equals("$.extra: property not allowed") ? 0 : 1;
                        }
                    }
                    return wrong;
                }));
            }
            for (java.util.concurrent.Future<Integer> result : results) {
                assertThat(result.get()).isZero();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    static String chatMessage(SplittableRandom random) {
        final List<String> members = new ArrayList<>();
        members.add(member(random, "type", "\"chat\""));
        members.add(member(random, "text", quoted(random, randomText(random))));
        if (random.nextBoolean()) {
            final StringBuilder room = new StringBuilder();
            for (int i = 1 + random.nextInt(32); i > 0; i--) {
                room.append("abcdefghijklmnopqrstuvwxyz0123456789-".charAt(random.nextInt(37)));
            }
            members.add(member(random, "room", "\"" + room + "\""));
        }
        if (random.nextBoolean()) {
            members.add(member(random, "n", Long.toString(random.nextLong() >> random.nextInt(64))));
        }
        Collections.shuffle(members, new java.util.Random(random.nextLong()));
        return ws(random) + "{" + String.join(",", members) + "}" + ws(random);
    }

    private static String member(SplittableRandom random, String key, String value) {
        return ws(random) + "\"" + key + "\"" + ws(random) + ":" + ws(random) + value + ws(random);
    }

    private static String ws(SplittableRandom random) {
        return random.nextInt(4) == 0 ? " \n\t\r".substring(random.nextInt(4)) : "";
    }

    private static final String[] PIECES = {
        "a",
        "Z",
        "0",
        " ",
        ".",
        "!",
        "?",
        "<",
        ">",
        "&",
        "'",
        "\"",
        "\\",
        "/",
        "=",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\n",
        "\t",
        "\u0001",
        "\u001f",
        "\u007f",
        "\u00e9",
        "\u00fc",
        "\u4e2d",
        "\u0416",
        "\ud83d\ude00",
        "\u2028",
        "\ufeff",
        "hello",
        "script",
        "on",
        "javascript"
    };

    private static String randomText(SplittableRandom random) {
        final StringBuilder out = new StringBuilder();
        for (int i = random.nextInt(60); i > 0; i--) {
            out.append(PIECES[random.nextInt(PIECES.length)]);
        }
        return out.toString();
    }

    /** JSON-quotes {@code text}, choosing at random between raw chars, short escapes and {@code \}{@code uXXXX}. */
    private static String quoted(SplittableRandom random, String text) {
        final StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            final char c = text.charAt(i);
            final boolean mustEscape = c == '"' || c == '\\' || c < 0x20;
            if (Character.isHighSurrogate(c)) {
                // A pair stays a pair: both raw, or both as \\u escapes.
                final char low = text.charAt(++i);
                out.append(random.nextBoolean() ? "" + c + low : String.format("\\u%04x\\u%04X", (int) c, (int) low));
            } else if (!mustEscape && random.nextInt(8) != 0) {
                out.append(c);
            } else if (c == '"' || c == '\\' || (c == '/' && random.nextBoolean())) {
                out.append('\\').append(c);
            } else if (c == '\n' && random.nextBoolean()) {
                out.append("\\n");
            } else if (c == '\t' && random.nextBoolean()) {
                out.append("\\t");
            } else {
                out.append(String.format(random.nextBoolean() ? "\\u%04x" : "\\u%04X", (int) c));
            }
        }
        return out.append('"').toString();
    }

    private static byte[] mutate(SplittableRandom random, byte[] bytes) {
        final byte[] out;
        switch (random.nextInt(6)) {
            case 0 -> {
                out = bytes.clone();
                if (out.length > 0) {
                    out[random.nextInt(out.length)] = (byte) random.nextInt(256);
                }
            }
            case 1 -> out = Arrays.copyOf(bytes, random.nextInt(bytes.length + 1));
            case 2 -> {
                final int at = random.nextInt(bytes.length + 1);
                final byte[] insert = "{}[]\",:\\ u0000\u00e9<>".getBytes(StandardCharsets.UTF_8);
                out = new byte[bytes.length + 1];
                System.arraycopy(bytes, 0, out, 0, at);
                out[at] = insert[random.nextInt(insert.length)];
                System.arraycopy(bytes, at, out, at + 1, bytes.length - at);
            }
            case 3 -> {
                final int from = random.nextInt(bytes.length + 1);
                final int to = from + random.nextInt(bytes.length - from + 1);
                out = new byte[bytes.length - (to - from)];
                System.arraycopy(bytes, 0, out, 0, from);
                System.arraycopy(bytes, to, out, from, bytes.length - to);
            }
            case 4 -> {
                final int from = random.nextInt(bytes.length + 1);
                final int to = from + random.nextInt(bytes.length - from + 1);
                out = new byte[bytes.length + (to - from)];
                System.arraycopy(bytes, 0, out, 0, to);
                System.arraycopy(bytes, from, out, to, bytes.length - from);
            }
            default -> {
                out = bytes.clone();
                for (int i = random.nextInt(4); i >= 0 && out.length > 0; i--) {
                    out[random.nextInt(out.length)] = (byte) "{}[]\",:\\<>".charAt(random.nextInt(10));
                }
            }
        }
        return out;
    }
}
