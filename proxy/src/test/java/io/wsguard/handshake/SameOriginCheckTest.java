package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The default origin rule's comparison: host and port, default ports normalised. */
class SameOriginCheckTest {

    @ParameterizedTest(name = "Origin {0} on Host {1}: {2}")
    @CsvSource({
        "https://chat.example.com, chat.example.com, true",
        "https://Chat.Example.com:8443, chat.example.com:8443, true",
        "http://localhost, localhost:80, true",
        "http://localhost:80, localhost, true",
        "http://localhost, localhost, true",
        "https://localhost, localhost:443, true",
        // A Host without a port came for a default port: 80 or 443, whichever the client's scheme was.
        "https://localhost, localhost, true",
        "http://localhost, localhost:443, false",
        "https://localhost, localhost:80, false",
        "http://localhost:9000, localhost:8443, false",
        "http://localhost:9000, localhost, false",
        "http://localhost, localhost:9000, false",
        "https://Chat.Example.com, chat.example.com:8443, false",
        "https://[::1]:9000, [::1]:9000, true",
        "https://[0:0::1]:9000, [::1]:9000, true",
        "https://[::1]:9000, [::1]:8443, false",
        "https://[::1], [::1], true",
        "http://127.0.0.1:9001, 127.0.0.1:9000, false",
        "https://evil.example, chat.example.com, false",
        "https://chat.example.com.evil.net, chat.example.com, false",
        "https://evilchat.example.com, chat.example.com, false",
        "chrome-extension://chat.example.com, chat.example.com, false",
        "null, chat.example.com, false",
        "file://, chat.example.com, false",
        "http://localhost/, localhost, false",
        "http://localhost:, localhost, false",
    })
    void sameHostAndPortOnly(String origin, String host, boolean allowed) {
        assertThat(SameOriginCheck.sameOrigin(origin, host)).isEqualTo(allowed);
    }

    @ParameterizedTest(name = "Host {0}")
    @CsvSource({"''", "'localhost:'", "'local host'", "'[::1'"})
    void aHostThatIsNoAuthorityMatchesNothing(String host) {
        assertThat(SameOriginCheck.sameOrigin("http://localhost", host)).isFalse();
    }
}
