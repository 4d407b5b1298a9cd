package io.wsguard.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Mode;
import io.wsguard.policy.Rate;
import io.wsguard.policy.Secret;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PolicyJsonTest {

    record Sample(
            String name,
            Secret secret,
            Optional<Secret> maybeSecret,
            Optional<Secret> absent,
            List<Secret> secrets,
            Map<String, Secret> headers,
            Path file,
            Duration timeout,
            URI uri,
            Mode mode,
            Rate rate,
            Instant at) {}

    @Test
    void rendersRecordsAsThePolicyFileWritesThemAndRedactsEverySecret() {
        final Sample sample = new Sample(
                "chat",
                new Secret("s3cr3t-one"),
                Optional.of(new Secret("s3cr3t-two")),
                Optional.empty(),
                List.of(new Secret("s3cr3t-three")),
                Map.of("X-Key", new Secret("s3cr3t-four")),
                Path.of("certs/server.crt"),
                Duration.ofSeconds(30),
                URI.create("https://id.example.com/.well-known/jwks.json"),
                Mode.MONITOR,
                Rate.parse("50/s"),
                Instant.parse("2026-11-23T10:15:02.117Z"));

        final String json = PolicyJson.write(sample);

        assertThat(json).doesNotContain("s3cr3t");
        assertThat(json).isEqualTo("{\"name\":\"chat\",\"secret\":\"<redacted>\",\"maybeSecret\":\"<redacted>\","
                                   + "\"absent\":null,\"secrets\":[\"<redacted>\"],"
                                   + "\"headers\":{\"X-Key\":\"<redacted>\"},"
                                   + "\"file\":\"certs/server.crt\",\"timeout\":\"30s\","
                                   + "\"uri\":\"https://id.example.com/.well-known/jwks.json\","
                                   + "\"mode\":\"monitor\",\"rate\":\"50/s\",\"at\":\"2026-11-23T10:15:02.117Z\"}");
    }

    @Test
    void writesDurationsInPolicyUnits() {
        assertThat(PolicyJson.duration(Duration.ofMillis(250))).isEqualTo("250ms");
        assertThat(PolicyJson.duration(Duration.ofSeconds(90))).isEqualTo("90s");
        assertThat(PolicyJson.duration(Duration.ofMinutes(5))).isEqualTo("5m");
        assertThat(PolicyJson.duration(Duration.ofHours(12))).isEqualTo("12h");
        assertThat(PolicyJson.duration(Duration.ZERO)).isEqualTo("0s");
        assertThat(PolicyJson.duration(Duration.ofNanos(1500))).isEqualTo("PT0.0000015S");
    }

    @Test
    void rendersConnectionInfoWithIsoInstant() {
        final String json = PolicyJson.write(List.of(new ConnectionInfo(
                "c1", "chat", "203.0.113.7", null, Instant.parse("2026-01-01T00:00:00Z"), 5, 1, 2, 3, 4)));

        assertThat(json).isEqualTo("[{\"id\":\"c1\",\"route\":\"chat\",\"client\":\"203.0.113.7\",\"subject\":null,"
                                   + "\"openedAt\":\"2026-01-01T00:00:00Z\",\"ageSeconds\":5,\"messagesIn\":1,"
                                   + "\"messagesOut\":2,\"bytesIn\":3,\"bytesOut\":4}]");
    }
}
