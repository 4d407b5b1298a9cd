package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Verdict;
import io.wsguard.policy.OriginPolicy;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The allow-list matcher against the origins that make or break it (docs/policy.md, {@code origin}). */
class OriginAllowListCheckTest {

    private static final OriginAllowListCheck CHECK = new OriginAllowListCheck(new OriginPolicy(
            List.of(
                    "https://chat.example.com",
                    "https://*.example.com",
                    "http://localhost:3000",
                    "https://a.com:443",
                    "http://b.com:80",
                    "https://c.com:8443",
                    "https://[2001:db8::1]",
                    "http://[::1]:3000"),
            false));

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
            delimiter = '|',
            value = {
                // exact, with case and default ports normalised
                "https://chat.example.com         | allowed",
                "HTTPS://Chat.EXAMPLE.com         | allowed",
                "https://chat.example.com:443     | allowed",
                "https://a.com                    | allowed",
                "https://a.com:443                | allowed",
                "http://b.com                     | allowed",
                "http://b.com:80                  | allowed",
                "http://localhost:3000            | allowed",
                "https://c.com:8443               | allowed",
                // scheme and port are significant
                "http://chat.example.com          | origin_denied",
                "https://chat.example.com:8443    | origin_denied",
                "https://localhost:3000           | origin_denied",
                "http://localhost                 | origin_denied",
                "https://c.com                    | origin_denied",
                "http://a.com                     | origin_denied",
                "https://b.com                    | origin_denied",
                // wildcard: one or more labels before .example.com, never the bare suffix
                "https://a.example.com            | allowed",
                "https://a.b.example.com          | allowed",
                "https://A-1.Example.Com          | allowed",
                "https://example.com              | origin_denied",
                "https://evil-example.com         | origin_denied",
                "https://evilexample.com          | origin_denied",
                "https://a.example.com.evil.net   | origin_denied",
                "https://.example.com             | origin_denied",
                "https://a..example.com           | origin_denied",
                "http://a.example.com             | origin_denied",
                "https://a.example.com:8443       | origin_denied",
                // not serialized origins
                "https://chat.example.com.        | origin_denied",
                "https://chat.example.com/        | origin_denied",
                "https://chat.example.com/path    | origin_denied",
                "https://chat.example.com?x=1     | origin_denied",
                "https://chat.example.com#x       | origin_denied",
                "https://user@chat.example.com    | origin_denied",
                "https://user:pw@chat.example.com | origin_denied",
                "https://chat.example.com:        | origin_denied",
                "https://chat.example.com:0       | origin_denied",
                "https://chat.example.com:65536   | origin_denied",
                "https://chat.example.com:443x    | origin_denied",
                "https://chat.example.com\\       | origin_denied",
                "https://chät.example.com         | origin_denied",
                "https://*.example.com            | origin_denied",
                "null                             | origin_denied",
                "chat.example.com                 | origin_denied",
                "//chat.example.com               | origin_denied",
                "https://                         | origin_denied",
                "file://                          | origin_denied",
                // IPv6 literals, in any spelling
                "https://[2001:db8::1]            | allowed",
                "https://[2001:DB8:0:0::1]:443    | allowed",
                "https://[2001:db8::2]            | origin_denied",
                "http://[::1]:3000                | allowed",
                "http://[0:0:0:0:0:0:0:1]:3000    | allowed",
                "http://[::1]                     | origin_denied",
                "http://[::1%eth0]:3000           | origin_denied",
                "http://[::1:3000                 | origin_denied",
                "http://[localhost]:3000          | origin_denied",
                "http://[::ffff:127.0.0.1]:3000   | origin_denied",
            })
    void matches(String origin, String expected) {
        final Verdict verdict = CHECK.decide(origin).toCompletableFuture().join();
        assertThat(verdict instanceof Verdict.Deny deny ? deny.reason().code() : "allowed")
                .isEqualTo(expected);
    }
}
