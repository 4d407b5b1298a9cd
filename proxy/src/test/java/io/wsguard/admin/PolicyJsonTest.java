package io.wsguard.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Mode;
import io.wsguard.policy.Rate;
import io.wsguard.policy.Redaction;
import io.wsguard.policy.Secret;
import io.wsguard.testing.SchemaChecked;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PolicyJsonTest {

    /**
     * A policy whose secrets live in plain-text fields: a Redis URI, an upstream target, a JWKS URI,
     * an issuer and upstream headers, each secret distinct so a leak names its field.
     */
    static final String POLICY_WITH_PLAIN_TEXT_SECRETS = """
            version: 1
            listeners:
              - port: 8080
            rateLimitStore:
              type: redis
              redis: { uri: "${REDIS_URI}", password: "${REDIS_PASSWORD}" }
            routes:
              - name: chat
                match: { path: /chat }
                upstream:
                  targets: ["wss://relay:${TARGET_PASSWORD}@chat.internal:9443/ws"]
                  headers:
                    set:
                      X-Api-Key: ${UPSTREAM_API_KEY}
                      X-Static-Key: literal-k3y-in-the-file
                      X-User: ${jwt.sub}
                      X-Tenant: ${jwt.tenant}${jwt.region}
                      X-Greeting: Bearer ${jwt.sub}
                auth:
                  jwt:
                    issuer: https://idp:issuer-s3cr3t-pw@id.example.com/
                    algorithms: [RS256]
                    jwksUri: https://keys:jwks-s3cr3t-pw@id.example.com/jwks.json
            """;

    static final Map<String, String> ENV = Map.of(
            "REDIS_URI", "rediss://ratelimit:redis-s3cr3t-pw@redis.internal:6380/2",
            "REDIS_PASSWORD", "redis-password-s3cr3t",
            "TARGET_PASSWORD", "target-s3cr3t-pw",
            "UPSTREAM_API_KEY", "api-s3cr3t-key");

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
        assertThat(json)
                .isEqualTo("{\"name\":\"chat\",\"secret\":\"<redacted>\",\"maybeSecret\":\"<redacted>\","
                        + "\"absent\":null,\"secrets\":[\"<redacted>\"],"
                        + "\"headers\":{\"X-Key\":\"<redacted>\"},"
                        + "\"file\":\"certs/server.crt\",\"timeout\":\"30s\","
                        + "\"uri\":\"https://id.example.com/.well-known/jwks.json\","
                        + "\"mode\":\"monitor\",\"rate\":\"50/s\",\"at\":\"2026-11-23T10:15:02.117Z\"}");
    }

    @Test
    void redactsSecretsHeldInPlainTextFieldsOfALoadedPolicy(@TempDir Path dir) throws IOException {
        final Path file = Files.writeString(dir.resolve("policy.yaml"), POLICY_WITH_PLAIN_TEXT_SECRETS);

        final String json = PolicyJson.write(SchemaChecked.load(file, ENV).policy());

        assertThat(json).doesNotContain("s3cr3t", "literal-k3y", "Bearer");
        assertThat(json)
                .contains(
                        "\"uri\":\"rediss://ratelimit:<redacted>@redis.internal:6380/2\"",
                        "\"password\":\"<redacted>\"",
                        "\"targets\":[\"wss://relay:<redacted>@chat.internal:9443/ws\"]",
                        "\"jwksUri\":\"https://keys:<redacted>@id.example.com/jwks.json\"",
                        "\"issuer\":\"https://idp:<redacted>@id.example.com/\"",
                        "\"X-Api-Key\":\"<redacted>\"",
                        "\"X-Static-Key\":\"<redacted>\"",
                        "\"X-User\":\"${jwt.sub}\"",
                        "\"X-Tenant\":\"${jwt.tenant}${jwt.region}\"",
                        "\"X-Greeting\":\"<redacted>\"");
    }

    @Test
    void hidesTheUserinfoPasswordOfEveryRedisUriForm() {
        assertThat(Redaction.withoutPassword("redis://:s3cret@host:6379")).isEqualTo("redis://:<redacted>@host:6379");
        assertThat(Redaction.withoutPassword("redis://user:s3cret@host")).isEqualTo("redis://user:<redacted>@host");
        assertThat(Redaction.withoutPassword("redis://s3cret@host/3")).isEqualTo("redis://<redacted>@host/3");
        assertThat(Redaction.withoutPassword("rediss://user:s3cret@[::1]:6380/0?timeout=5s"))
                .isEqualTo("rediss://user:<redacted>@[::1]:6380/0?timeout=5s");
        assertThat(Redaction.withoutPassword("redis://user:p%40ss@host:6379"))
                .isEqualTo("redis://user:<redacted>@host:6379");
        assertThat(Redaction.withoutPassword("redis://127.0.0.1:6379")).isEqualTo("redis://127.0.0.1:6379");
        assertThat(Redaction.withoutPassword("wss://host/users/@me")).isEqualTo("wss://host/users/@me");
    }

    @Test
    void hidesEverythingPastTheSchemeOfAUriItCannotTakeApart() {
        assertThat(Redaction.withoutPassword("redis://:s3c/ret@host")).isEqualTo("redis://<redacted>");
        assertThat(Redaction.withoutPassword("redis://user:s3c@ret@host")).isEqualTo("redis://<redacted>");
        assertThat(Redaction.withoutPassword("wsguard-demo")).isEqualTo("wsguard-demo");
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

        assertThat(json)
                .isEqualTo("[{\"id\":\"c1\",\"route\":\"chat\",\"client\":\"203.0.113.7\",\"subject\":null,"
                        + "\"jti\":null,\"openedAt\":\"2026-01-01T00:00:00Z\",\"ageSeconds\":5,\"messagesIn\":1,"
                        + "\"messagesOut\":2,\"bytesIn\":3,\"bytesOut\":4,\"path\":\"pump\"}]");
    }

    @Test
    void hidesQueryValuesOfUpstreamAndJwksUrisButKeepsTheirNames() {
        assertThat(Redaction.withoutQueryValues("wss://chat.internal/ws?access_token=s3cret&room=7"))
                .isEqualTo("wss://chat.internal/ws?access_token=<redacted>&room=<redacted>");
        assertThat(Redaction.withoutQueryValues("https://idp.example/jwks?key=s3cret#frag"))
                .isEqualTo("https://idp.example/jwks?key=<redacted>#frag");
        assertThat(Redaction.withoutQueryValues("ws://upstream:8080/chat?flag"))
                .isEqualTo("ws://upstream:8080/chat?flag");
        assertThat(Redaction.withoutQueryValues("ws://upstream:8080/chat")).isEqualTo("ws://upstream:8080/chat");
    }
}
