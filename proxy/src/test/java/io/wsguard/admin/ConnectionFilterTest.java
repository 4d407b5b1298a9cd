package io.wsguard.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class ConnectionFilterTest {

    @Test
    void refusesAFilterThatWouldMatchEverything() {
        assertThatThrownBy(() -> new ConnectionFilter(Optional.empty(), Optional.empty(), Optional.empty()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least one of sub, client, route");
    }

    @Test
    void matchesOnlyWhenEveryPresentFilterEquals() {
        final ConnectionFilter alice =
                new ConnectionFilter(Optional.of("alice"), Optional.empty(), Optional.of("chat"));

        assertThat(alice.matches("alice", "203.0.113.7", "chat")).isTrue();
        assertThat(alice.matches("alice", "198.51.100.1", "chat")).isTrue();
        assertThat(alice.matches("alice", "203.0.113.7", "feed")).isFalse();
        assertThat(alice.matches("bob", "203.0.113.7", "chat")).isFalse();
        assertThat(alice.matches(null, "203.0.113.7", "chat")).isFalse();
    }

    @Test
    void clientFilterAlone() {
        final ConnectionFilter ip =
                new ConnectionFilter(Optional.empty(), Optional.of("203.0.113.7"), Optional.empty());

        assertThat(ip.matches(null, "203.0.113.7", "chat")).isTrue();
        assertThat(ip.matches("alice", "203.0.113.70", "chat")).isFalse();
    }
}
