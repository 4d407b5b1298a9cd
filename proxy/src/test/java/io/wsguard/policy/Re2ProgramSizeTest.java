package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The estimate that keeps RE2/J from expanding a nested repetition until the heap runs out. */
class Re2ProgramSizeTest {

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
            delimiter = '#',
            value = {
                "(?i)<script                 # 7",
                "(?i)\\bon[a-z]+\\s*=        # 8",
                "a{1000}                     # 1000",
                "a{2,5}b                     # 6",
                "a{3,}                       # 3",
                "(ab){10}                    # 20",
                "(?:a|bc){10}                # 30",
                "(?P<n>a{10}){10}            # 100",
                "((a{1000}){1000}){1000}     # 1000000000",
                "[a-z{}]{100}                # 100",
                "a{,5}                       # 5",
                "\\{3}                       # 3",
            })
    void estimatesTheExpandedProgram(String pattern, long size) {
        assertThat(MessagePolicy.DenyRulePolicy.programSize(pattern)).isEqualTo(size);
    }
}
