package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.handshake.SharedState;
import io.wsguard.limit.LimitState;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyProblem;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The policy compiler builds each route's content rules and reports what cannot be compiled at
 * the line and column of the field at fault, like every other policy problem. (Loaded past
 * the policy loader.)
 */
class ContentRulesCompileTest {

    @TempDir
    Path dir;

    private Path policy(String messages) throws Exception {
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, """
                version: 1
                listeners: [{ port: 0 }]
                routes:
                  - name: chat
                    match: { path: /chat }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: none
                    messages:
                %s
                """.formatted(messages.indent(6).stripTrailing()));
        return file;
    }

    private static List<PolicyProblem> problems(LoadedPolicy loaded) {
        return catchThrowableOfType(PolicyException.class, () -> PolicyCheck.compile(loaded))
                .problems();
    }

    @Test
    void compiledRulesAreKeptByRouteName() throws Exception {
        Files.writeString(dir.resolve("chat.json"), "{\"type\":\"object\",\"required\":[\"text\"]}");
        final LoadedPolicy loaded = loadPolicy(policy("""
                json: { required: true, schema: chat.json }
                deny: [ { name: script-tag, pattern: '(?i)<script' } ]
                sanitize: { html: strip, fields: ['$.text'] }"""));
        final CompiledPolicy compiled =
                CompiledPolicy.compile(loaded, new LimitState(), SharedState.NONE, Runnable::run, Runnable::run);
        try {
            final byte[] message = "{\"x\":1}".getBytes(StandardCharsets.UTF_8);
            final CompiledRoute chat = compiled.routeList().get(0);
            assertThat(chat.name()).isEqualTo("chat");
            // The client's messages go through the route's content rules; the upstream's (direction: inbound) do not.
            assertThat(chat.inboundRules().content().inspectText(message, 0, message.length))
                    .isEqualTo(new Verdict.Deny(Reason.SCHEMA_VIOLATION, "$: required property 'text' missing"));
            assertThat(chat.outboundRules().content()).isNull();
        } finally {
            compiled.stop();
        }
    }

    @Test
    void schemaFileThatIsNotJsonIsReportedAtTheSchemaFieldWithItsOwnLineAndColumn() throws Exception {
        final Path schema = dir.resolve("chat.json");
        Files.writeString(schema, "{\n  \"type\": \"object\",\n  \"properties\": { \"text\": }\n}\n");
        final Path file = policy("json: { schema: chat.json }");
        final List<PolicyProblem> problems = problems(loadPolicy(file));
        assertThat(problems).hasSize(1);
        assertThat(problems.get(0).toString())
                .startsWith(file + ":9:23: routes[0].messages.json.schema: " + schema + ":3:27: not JSON: ");
    }

    @Test
    void eachRoutesContentProblemIsReported() throws Exception {
        Files.writeString(dir.resolve("bad.json"), "{\"type\": 5}");
        final Path file = policy("json: { schema: bad.json }");
        Files.writeString(file, Files.readString(file) + """
                  - name: other
                    match: { path: /other }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: none
                    messages:
                      sanitize: { html: strip, fields: ['$.ok', '$.items['] }
                """);
        final List<String> problems =
                problems(loadPolicy(file)).stream().map(PolicyProblem::toString).toList();
        assertThat(problems).hasSize(2);
        assertThat(problems.get(0))
                .startsWith(file + ":9:23: routes[0].messages.json.schema: ")
                .contains("bad.json: not a valid JSON Schema: $.type: ");
        assertThat(problems.get(1))
                .isEqualTo(file
                        + ":15:49: routes[1].messages.sanitize.fields[1]: "
                        + "'$.items[' is not a JSON path: unclosed '[' at column 8"
                        + " (expected: a JSON path like $.text, $.user.name or "
                        + "$.items[*].title; supported: .name, ['name'], [n], [*])");
    }

    private static LoadedPolicy loadPolicy(Path file) {
        return io.wsguard.testing.SchemaChecked.load(file, java.util.Map.of());
    }
}
