package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SameOriginCheckTest {

    @ParameterizedTest(name = "Origin {0} on Host {1}: {2}")
    @CsvSource({
        "https://chat.example.com, chat.example.com, true",
        "https://Chat.Example.com, chat.example.com:8443, true",
        "http://localhost:9000, localhost:8443, true",
        "https://[::1]:9000, [::1]:8443, true",
        "https://evil.example, chat.example.com, false",
        "https://chat.example.com.evil.net, chat.example.com, false",
        "https://evilchat.example.com, chat.example.com, false",
        "null, chat.example.com, false",
        "file://, chat.example.com, false",
    })
    void sameHostOnly(String origin, String host, boolean allowed) {
        final String originHost = SameOriginCheck.originHost(origin);
        final boolean same = originHost != null && originHost.equals(SameOriginCheck.hostWithoutPort(host));
        assertThat(same).isEqualTo(allowed);
    }
}
