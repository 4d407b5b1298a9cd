package io.wsguard.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.SchemaChecked;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The routes hash instances compare: equal routes agree whatever the listeners, the admin port, the
 * key order in the file or the directory the policy (and its relative paths) sit in; a route's
 * setting or the content of a file a route names makes them differ; secrets do not show in it.
 */
class RoutesHashTest {

    private static final String SCHEMA = "{\"type\": \"object\", \"required\": [\"text\"]}";

    @TempDir
    Path dir;

    @Test
    void sameRoutesInAnotherDirectoryWithOtherPortsAgree() throws Exception {
        final String one = hash("one", route("maxSize: 64KiB, json: { schema: chat.json }"), SCHEMA, "");
        final String other = hash(
                "other",
                route("json: { schema: chat.json }, maxSize: 64KiB"),
                SCHEMA,
                "admin: { host: 127.0.0.1, port: 9191 }\n");

        assertThat(one).hasSize(64).isEqualTo(other);
    }

    @Test
    void aRouteSettingOrAReferencedFileMakesThemDiffer() throws Exception {
        final String base = hash("base", route("maxSize: 64KiB, json: { schema: chat.json }"), SCHEMA, "");

        assertThat(hash("setting", route("maxSize: 32KiB, json: { schema: chat.json }"), SCHEMA, ""))
                .isNotEqualTo(base);
        assertThat(hash(
                        "file",
                        route("maxSize: 64KiB, json: { schema: chat.json }"),
                        SCHEMA.replace("text", "body"),
                        ""))
                .isNotEqualTo(base);
    }

    @Test
    void aSecretCountsAsRedacted() throws Exception {
        final String jwt = """
                - name: chat
                  match: { path: /c }
                  upstream: { targets: ["ws://127.0.0.1:9/"] }
                  auth: { jwt: { algorithms: [HS256], secret: %s } }
                """;
        final String one = hash("s1", jwt.formatted("a".repeat(40)), SCHEMA, "");
        final String other = hash("s2", jwt.formatted("b".repeat(40)), SCHEMA, "");

        assertThat(one).isEqualTo(other);
        assertThat(new String(
                        PolicyJson.canonical(SchemaChecked.load(dir.resolve("s1/policy.yaml"), Map.of())
                                .policy()
                                .routes()),
                        java.nio.charset.StandardCharsets.UTF_8))
                // Keys sorted: auth comes before the record's first component, name.
                .startsWith("[{\"auth\":")
                .doesNotContain("a".repeat(40))
                .contains(PolicyJson.REDACTED)
                .doesNotContain(dir.toString());
    }

    private static String route(String messages) {
        return """
                - name: chat
                  match: { path: /c }
                  upstream: { targets: ["ws://127.0.0.1:9/"] }
                  auth: none
                  messages: { %s }
                """.formatted(messages);
    }

    private String hash(String name, String routes, String schema, String extra) throws Exception {
        final Path own = Files.createDirectories(dir.resolve(name));
        Files.writeString(own.resolve("chat.json"), schema);
        final PolicyText policy = PolicyText.in(own).routes(routes).extra(extra);
        final Path file = own.resolve("policy.yaml");
        Files.writeString(file, policy.text());
        return RoutesHash.of(SchemaChecked.load(file, Map.of()).policy().routes());
    }
}
