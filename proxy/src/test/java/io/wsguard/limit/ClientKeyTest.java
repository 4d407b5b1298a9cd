package io.wsguard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ClientKeyTest {

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
        "203.0.113.7, 203.0.113.7",
        "2001:db8:1:2::1, 2001:db8:1:2::/64",
        "2001:db8:1:2:ffff:ffff:ffff:ffff, 2001:db8:1:2::/64",
        "2001:DB8:1:2:0:0:0:9, 2001:db8:1:2::/64",
        "2001:db8:1:3::1, 2001:db8:1:3::/64",
        "::1, 0:0:0:0::/64",
        "::ffff:203.0.113.7, 203.0.113.7",
        "fe80::1%eth0, fe80::1%eth0",
    })
    void ipv4IsItselfAndIpv6IsItsSlash64(String ip, String key) {
        assertThat(ClientKey.of(ip)).isEqualTo(key);
    }
}
