package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.SchemaChecked;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code messages.maxFragments}: its default follows maxSize, an explicit value wins, a bad one is a located problem.
 */
class MaxFragmentsPolicyTest {

    @TempDir
    Path dir;

    @Test
    void defaultsToOneFramePer32BytesOfMaxSizeAndAtLeast1024() {
        assertThat(messages("").maxFragments()).isEqualTo(2048); // no messages section: maxSize 64 KiB
        assertThat(messages("    messages: { binary: deny }\n").maxFragments()).isEqualTo(2048);
        assertThat(messages("    messages: { maxSize: 4MiB }\n").maxFragments()).isEqualTo(131_072);
        assertThat(messages("    messages: { maxSize: 1KiB }\n").maxFragments()).isEqualTo(1024);
    }

    @Test
    void anExplicitValueWins() {
        assertThat(messages("    messages: { maxSize: 4MiB, maxFragments: 16 }\n")
                        .maxFragments())
                .isEqualTo(16);
    }

    @Test
    void aBadValueIsALocatedProblem() {
        assertThat(PolicyFiles.problems(dir, PolicyFiles.MINIMAL + "    messages: { maxFragments: 0 }\n", Map.of()))
                .contains("policy.yaml:9:31: routes[0].messages.maxFragments: "
                        + "0 is out of range (expected: 1..2147483647)");
        assertThat(PolicyFiles.problems(dir, PolicyFiles.MINIMAL + "    messages: { maxFragments: many }\n", Map.of()))
                .contains("policy.yaml:9:31: routes[0].messages.maxFragments: "
                        + "'many' is not an integer (expected: 1..2147483647)");
    }

    private MessagePolicy messages(String section) {
        return SchemaChecked.load(PolicyFiles.write(dir, PolicyFiles.MINIMAL + section), Map.of())
                .policy()
                .routes()
                .get(0)
                .messages();
    }
}
