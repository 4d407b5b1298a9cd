package io.wsguard.message;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.re2j.Pattern;
import io.wsguard.policy.MessagePolicy;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The literal pre-filter must never reject text its pattern matches: that would let a denied message
 * through. Checked against RE2/J itself on generated patterns and texts.
 */
class LiteralFilterTest {

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
            delimiter = '#',
            quoteCharacter = '`',
            value = {
                "(?i)<script                 # [(?i)<, (?i)cript]",
                "(?i)javascript:             # [(?i)java, (?i)cript:]",
                "(?i)\\bon[a-z]+\\s*=        # [(?i)=, (?i)on]",
                "<script                     # [<script]",
                "ab*c                        # [c, a]",
                "ab+c                        # [ab, c]",
                "ab{2,}c                     # [ab, c]",
                "ab{0,2}c                    # [c, a]",
                "a{x                         # [a{x]",
                "a|b                         # [a] | [b]",
                "(?i)x|Y                     # [(?i)x] | [(?i)y]",
                "x(?i)y|Z                    # [x, (?i)y] | [(?i)z]",
                "(?i)(<script|javascript:)   # [(?i)<, (?i)cript] | [(?i)java, (?i)cript:]",
                "(?:foo|bar)baz              # [baz, foo] | [baz, bar]",
                "(?:foo|)baz                 # [baz]",
                "(foo)?bar                   # [bar]",
                "(?P<n>a)b                   # [b, a]",
                "(?<n>a)b                    # [b, a]",
                "a\\.b                       # [a.b]",
                "\\Qa.b\\Ec                  # [c]",
                "[abc]+x                     # [x]",
                "[[:alpha:]]x                # [x]",
                "\\p{Greek}x                  # [x]",
                "caf\u00e9                   # [caf\u00e9]",
                "(?i)caf\u00e9               # [(?i)caf]",
                "(?i)kelvins                 # [(?i)elvin]",
                "(?i:ab)c                    # [(?i)ab, c]",
                "\\d+                        # NONE",
                "x*                          # NONE",
                "a|\\d                       # NONE",
                "``                          # NONE",
                "(a+)+$                      # [a]",
                "\\x{41}bc                   # [bc]",
            })
    void readsTheLiteralsEveryMatchContains(String pattern, String expected) {
        assertThat(LiteralFilter.of(pattern == null ? "" : pattern).toString()).isEqualTo(expected);
    }

    @Test
    void asciiLettersOtherThanKAndSFoldOnlyToTheirOtherCase() {
        // The filter's assumption, checked against RE2/J's own case folding over every BMP char.
        for (char letter = 'a'; letter <= 'z'; letter++) {
            final Pattern pattern = Pattern.compile("(?i)" + letter);
            for (int c = 0; c <= 0xFFFF; c++) {
                if (Character.isSurrogate((char) c)) {
                    continue;
                }
                final boolean matches =
                        pattern.matcher(String.valueOf((char) c)).find();
                final boolean asciiPair = c == letter || c == Character.toUpperCase(letter);
                if (letter == 'k' || letter == 's') {
                    assertThat(matches || !asciiPair).isTrue();
                } else {
                    assertThat(matches).as("(?i)%s vs U+%04X", letter, c).isEqualTo(asciiPair);
                }
            }
        }
    }

    @Test
    void neverRejectsWhatRe2Matches() {
        final SplittableRandom random = new SplittableRandom(4242);
        int checked = 0;
        int filtered = 0;
        for (int p = 0; p < 3_000; p++) {
            final String pattern = randomPattern(random, 0);
            final Pattern compiled;
            try {
                compiled = Pattern.compile(pattern);
            } catch (com.google.re2j.PatternSyntaxException e) {
                continue;
            }
            final LiteralFilter filter = LiteralFilter.of(pattern);
            final DenyRules rules = DenyRules.compile(List.of(new MessagePolicy.DenyRulePolicy("r", pattern)));
            for (int t = 0; t < 60; t++) {
                final String text = randomText(random);
                final byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
                final boolean matches = compiled.matcher(text).find();
                final boolean bytesMay = filter.mayMatch(utf8, 0, utf8.length);
                final boolean charsMay = filter.mayMatch(text);
                if (matches) {
                    assertThat(bytesMay && charsMay)
                            .as("pattern %s text %s filter %s", pattern, text, filter)
                            .isTrue();
                }
                assertThat(bytesMay)
                        .as("bytes and chars agree: %s on %s", pattern, text)
                        .isEqualTo(charsMay);
                // The whole deny path (byte-presence pass, filter, RE2/J) agrees with RE2/J exactly.
                assertThat(rules.firstMatch(utf8, 0, utf8.length, 1) == 0)
                        .as("deny %s on %s", pattern, text)
                        .isEqualTo(matches);
                assertThat(rules.firstMatch(text, 1) == 0)
                        .as("deny %s on chars %s", pattern, text)
                        .isEqualTo(matches);
                checked++;
                filtered += bytesMay ? 0 : 1;
            }
        }
        assertThat(checked).isGreaterThan(50_000);
        // The filter must also be useful, not merely safe.
        assertThat(filtered).isGreaterThan(checked / 10);
    }

    @Test
    void wordAtATimeSearchFindsTheFirstOfEitherByte() {
        final SplittableRandom random = new SplittableRandom(99);
        for (int n = 0; n < 100_000; n++) {
            final byte[] buf = new byte[random.nextInt(70)];
            for (int i = 0; i < buf.length; i++) {
                buf[i] =
                        (byte) (random.nextInt(4) == 0 ? random.nextInt(256) : "ab\\<\u0000".charAt(random.nextInt(5)));
            }
            final int from = buf.length == 0 ? 0 : random.nextInt(buf.length + 1);
            final int to = from + random.nextInt(buf.length - from + 1);
            final byte a = (byte) (random.nextBoolean() ? "ab\\<".charAt(random.nextInt(4)) : random.nextInt(256));
            final byte b = random.nextBoolean() ? a : (byte) random.nextInt(256);
            int expected = -1;
            for (int i = from; i < to; i++) {
                if (buf[i] == a || buf[i] == b) {
                    expected = i;
                    break;
                }
            }
            assertThat(LiteralFilter.indexOfEither(buf, from, to, a, b)).isEqualTo(expected);
        }
    }

    private static final String[] ATOMS = {
        "a",
        "b",
        "k",
        "K",
        "s",
        "S",
        "<",
        "=",
        ":",
        "\u212a",
        "\u017f",
        "\u00e9",
        "\\.",
        ".",
        "\\b",
        "^",
        "$",
        "[ab]",
        "[^a]",
        "\\d",
        "\\w",
        "\\s",
        "\\x{41}",
        "A",
        "\\Qa<\\E",
        "{",
        "}"
    };
    private static final String[] QUANTIFIERS = {"", "", "", "", "*", "+", "?", "{2}", "{0,1}", "{1,}", "+?", "*?"};
    private static final String[] FLAGS = {"", "", "(?i)", "(?-i)", "(?s)", "(?i:"};

    private static String randomPattern(SplittableRandom random, int depth) {
        final StringBuilder out = new StringBuilder();
        final int items = 1 + random.nextInt(5);
        for (int i = 0; i < items; i++) {
            final int kind = random.nextInt(10);
            if (kind == 0 && depth < 2) {
                out.append(random.nextBoolean() ? "(" : "(?:").append(randomPattern(random, depth + 1));
                if (random.nextBoolean()) {
                    out.append('|').append(randomPattern(random, depth + 1));
                }
                out.append(')').append(QUANTIFIERS[random.nextInt(QUANTIFIERS.length)]);
            } else if (kind == 1) {
                final String flag = FLAGS[random.nextInt(FLAGS.length)];
                out.append(flag);
                if (flag.endsWith(":")) {
                    out.append(ATOMS[random.nextInt(ATOMS.length)]).append(')');
                }
            } else if (kind == 2 && depth == 0 && i > 0) {
                out.append('|');
            } else {
                out.append(ATOMS[random.nextInt(ATOMS.length)]).append(QUANTIFIERS[random.nextInt(QUANTIFIERS.length)]);
            }
        }
        return out.toString();
    }

    private static final String[] TEXT = {
        "a",
        "A",
        "b",
        "B",
        "k",
        "K",
        "\u212a",
        "s",
        "S",
        "\u017f",
        "<",
        "=",
        ":",
        ".",
        "\u00e9",
        "\u00c9",
        " ",
        "1",
        "x",
        "\n",
        "{",
        "}",
        "\ud83d\ude00"
    };

    private static String randomText(SplittableRandom random) {
        final StringBuilder out = new StringBuilder();
        // Mostly short, sometimes past 8 bytes a few times over: the word-at-a-time search runs too.
        final int n = random.nextInt(4) == 0 ? random.nextInt(40) : random.nextInt(12);
        for (int i = 0; i < n; i++) {
            out.append(TEXT[random.nextInt(TEXT.length)]);
        }
        return out.toString();
    }
}
