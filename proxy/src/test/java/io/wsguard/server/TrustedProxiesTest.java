package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TrustedProxiesTest {

    private final TrustedProxies trusted = TrustedProxies.of(List.of("10.0.0.0/8", "127.0.0.1", "fd00::/8"));

    @ParameterizedTest(name = "peer {0}, X-Forwarded-For ''{1}'' → {2}")
    @CsvSource(
            delimiter = '|',
            value = {
                "203.0.113.7 | 1.2.3.4        | 203.0.113.7",
                "127.0.0.1   | 1.2.3.4        | 1.2.3.4",
                "127.0.0.1   | 6.6.6.6, 1.2.3.4, 10.1.1.1 | 1.2.3.4",
                "10.0.0.9    | 10.0.0.8       | 10.0.0.8",
                "127.0.0.1   | not-an-ip      | 127.0.0.1",
                "127.0.0.1   | 1.2.3.4:5555   | 1.2.3.4",
                "fd00::1     | 2001:db8::7    | 2001:db8::7",
                "[0:0:0:0:0:0:0:1] | 1.2.3.4  | ::1",
                "127.0.0.1   | '1.2.3.4,'     | 127.0.0.1",
                "127.0.0.1   | ','            | 127.0.0.1",
                "127.0.0.1   | '6.6.6.6,,1.2.3.4' | 1.2.3.4",
                "127.0.0.1   | ''             | 127.0.0.1",
            })
    void believesForwardedForOnlyFromTrustedPeers(String peer, String forwardedFor, String expected) {
        assertThat(trusted.clientIp(peer, forwardedFor)).isEqualTo(expected);
    }

    @Test
    void canonicalFormIsRfc5952() {
        assertThat(TrustedProxies.canonical("[0:0:0:0:0:0:0:1]")).isEqualTo("::1");
        assertThat(TrustedProxies.canonical("2001:0db8:0:0:1:0:0:1")).isEqualTo("2001:db8::1:0:0:1");
        assertThat(TrustedProxies.canonical("fe80:0:0:0:0:0:0:0")).isEqualTo("fe80::");
        assertThat(TrustedProxies.canonical("1:2:3:4:5:6:7:8")).isEqualTo("1:2:3:4:5:6:7:8");
        assertThat(TrustedProxies.canonical("203.0.113.7")).isEqualTo("203.0.113.7");
    }

    @Test
    void neverResolvesNames() {
        assertThat(TrustedProxies.literal("localhost")).isNull();
        assertThat(trusted.isTrusted("localhost")).isFalse();
    }
}
