package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class UnitsTest {

    @Test
    void parsesDurations() {
        assertThat(Units.duration("250ms")).isEqualTo(Duration.ofMillis(250));
        assertThat(Units.duration("30s")).isEqualTo(Duration.ofSeconds(30));
        assertThat(Units.duration("5m")).isEqualTo(Duration.ofMinutes(5));
        assertThat(Units.duration("12h")).isEqualTo(Duration.ofHours(12));
        assertThat(Units.duration("1d")).isEqualTo(Duration.ofDays(1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "5", "5 min", "-1s", "1.5s", "s", "99999999999999999999s"})
    void refusesMalformedDurations(String text) {
        assertThatThrownBy(() -> Units.duration(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("(expected: ");
    }

    @Test
    void parsesSizes() {
        assertThat(Units.bytes("512")).isEqualTo(512);
        assertThat(Units.bytes("64KiB")).isEqualTo(64 * 1024);
        assertThat(Units.bytes("1MiB")).isEqualTo(1 << 20);
        assertThat(Units.bytes("2GiB")).isEqualTo(2L << 30);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "64KB", "1mib", "-1", "1.5MiB", "9999999999999GiB"})
    void refusesMalformedSizes(String text) {
        assertThatThrownBy(() -> Units.bytes(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("(expected: ");
    }

    @Test
    void parsesRates() {
        assertThat(Rate.parse("50/s")).isEqualTo(new Rate(50, Duration.ofSeconds(1)));
        assertThat(Rate.parse("3000/min")).isEqualTo(new Rate(3000, Duration.ofMinutes(1)));
        assertThat(Rate.parse("10/h")).isEqualTo(new Rate(10, Duration.ofHours(1)));
        assertThat(Rate.parse("1MiB/s")).isEqualTo(new Rate(1 << 20, Duration.ofSeconds(1)));
        assertThat(Rate.parse("3000/min")).hasToString("3000/min");
    }

    @Test
    void refusesMalformedRatesWithTheUsersText() {
        assertThatThrownBy(() -> Rate.parse("50/sec"))
                .hasMessage("'50/sec' is not a rate (expected: like 50/s, 3000/min, 10/h or 1MiB/s)");
        assertThatThrownBy(() -> Rate.parse("0/s")).hasMessageContaining("(expected: > 0)");
    }

    @Test
    void secretsNeverPrintTheirValue() {
        assertThat(new Secret("hunter2")).hasToString("<redacted>");
        assertThat(String.valueOf(java.util.Optional.of(new Secret("hunter2")))).doesNotContain("hunter2");
    }
}
