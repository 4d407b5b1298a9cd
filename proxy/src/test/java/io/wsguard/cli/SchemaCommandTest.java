package io.wsguard.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.policy.PolicySchema;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** {@code wsguard schema}: the policy's JSON Schema on stdout, exactly the file at the repository root. */
class SchemaCommandTest {

    @Test
    void printsThePolicySchemaAndNothingElse() throws Exception {
        final StringWriter out = new StringWriter();
        final StringWriter err = new StringWriter();
        final CommandLine cli = WsguardCommand.commandLine();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));

        final int exit = cli.execute("schema");

        assertThat(exit).isEqualTo(ExitCode.OK);
        assertThat(err.toString()).isEmpty();
        // Surefire runs in proxy/: the file editors and the release tarball use.
        assertThat(out.toString()).isEqualTo(Files.readString(Path.of("../schema/wsguard-policy.schema.json")));
        assertThat(out.toString()).isEqualTo(PolicySchema.text());
        final JsonNode schema = JsonMapper.builder().build().readTree(out.toString());
        assertThat(schema.path("$schema").stringValue()).isEqualTo("https://json-schema.org/draft/2020-12/schema");
        assertThat(schema.path("required").toString()).isEqualTo("[\"version\",\"listeners\",\"routes\"]");
    }

    @Test
    void isListedInTheUsage() {
        final StringWriter out = new StringWriter();
        final CommandLine cli = WsguardCommand.commandLine();
        cli.setOut(new PrintWriter(out));

        cli.execute("--help");

        assertThat(out.toString()).contains("schema").contains("JSON Schema");
    }
}
