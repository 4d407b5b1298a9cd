package io.wsguard.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import io.wsguard.testing.SchemaChecked;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code wsguard check}: OK for a good policy, located problems and exit 2 for a bad one. */
class CheckCommandTest {

    @TempDir
    Path dir;

    private record Result(int exit, String out, String err) {}

    private Result run(String... args) {
        final StringWriter out = new StringWriter();
        final StringWriter err = new StringWriter();
        final CommandLine cli = WsguardCommand.commandLine();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        final int exit = cli.execute(args);
        if (exit == ExitCode.OK && args[0].equals("check")) {
            SchemaChecked.assertValid(Path.of(args[List.of(args).indexOf("-c") + 1]));
        }
        return new Result(exit, out.toString(), err.toString());
    }

    private Path policy(String tls) throws Exception {
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, """
                version: 1
                listeners:
                  - port: 0
                    tls: %s
                routes:
                  - name: chat
                    match: { path: /chat }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: none
                """.formatted(tls));
        return file;
    }

    @Test
    void validPolicyWithRealCertificatesPrintsOk() throws Exception {
        DevCerts.ensure(dir.resolve("certs"));
        final Result result = run(
                "check",
                "-c",
                policy("{ certificate: certs/server.crt, privateKey: certs/server.key }")
                        .toString());
        assertThat(result.out().strip()).isEqualTo("OK");
        assertThat(result.exit()).isZero();
    }

    @Test
    void certificateThatIsNotPemIsReportedAtItsLineAndColumn() throws Exception {
        DevCerts.ensure(dir.resolve("certs"));
        Files.writeString(dir.resolve("certs/garbage.crt"), "not a certificate\n");
        final Path file = policy("{ certificate: certs/garbage.crt, privateKey: certs/server.key }");
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out()).startsWith(file + ":4:25: listeners[0].tls.certificate: ");
        assertThat(result.err()).doesNotContain("Exception");
    }

    @Test
    void jwtKeyProblemsAreReportedAtTheirFieldWithoutTheSecret() throws Exception {
        Files.writeString(dir.resolve("not-a-key.pem"), "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n");
        final Path file = dir.resolve("jwt.yaml");
        Files.writeString(file, """
                version: 1
                listeners: [{ port: 0 }]
                routes:
                  - name: short
                    match: { path: /short }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: { jwt: { algorithms: [HS256], secret: "only-20-bytes-secret" } }
                  - name: pem
                    match: { path: /pem }
                    upstream: { targets: [ws://127.0.0.1:9000/chat] }
                    auth: { jwt: { algorithms: [RS256], publicKey: not-a-key.pem } }
                """);
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out())
                .contains(file + ":7:")
                .contains("routes[0].auth.jwt.secret: ")
                .contains(file + ":11:")
                .contains("routes[1].auth.jwt.publicKey: ")
                .doesNotContain("only-20-bytes-secret");
        assertThat(result.out().lines().count()).isEqualTo(2);
    }

    @Test
    void everyProblemIsPrintedNotJustTheFirst() throws Exception {
        final Path file = dir.resolve("bad.yaml");
        Files.writeString(file, """
                version: 1
                listeners:
                  - port: 99999
                routes:
                  - name: chat
                    match: { path: chat }
                    upstream: { targets: [http://x] }
                """);
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out().lines().count()).isGreaterThanOrEqualTo(3);
        assertThat(result.out().lines()).allMatch(line -> line.matches(".*bad\\.yaml:\\d+:\\d+: .+"));
    }

    private Path messagesPolicy(String messages) throws Exception {
        final Path file = dir.resolve("messages.yaml");
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
                """.formatted(messages));
        return file;
    }

    @Test
    void schemaFileWithAJsonSyntaxErrorIsReportedWithBothLocations() throws Exception {
        final Path schema = dir.resolve("chat.json");
        Files.writeString(schema, "{\n  \"type\": \"object\",\n  \"required\": [\"text\",]\n}\n");
        final Path file = messagesPolicy("json: { required: true, schema: chat.json }");
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out())
                .startsWith(file + ":9:39: routes[0].messages.json.schema: " + schema + ":3:23: not JSON: ");
        assertThat(result.out().lines().count()).isEqualTo(1);
    }

    /** "Every message must be well-formed JSON": {@code required: true} needs no schema. */
    @Test
    void jsonRequiredWithoutASchemaIsAccepted() throws Exception {
        final Result result =
                run("check", "-c", messagesPolicy("json: { required: true }").toString());
        // The fixture's plain listener draws the DNS-rebinding warning first; no error comes.
        assertThat(result.out()
                        .lines()
                        .filter(line -> !line.contains(": warning: "))
                        .toList())
                .containsExactly("OK");
        assertThat(result.exit()).isZero();
    }

    @Test
    void jsonWithNeitherASchemaNorRequiredIsReportedAtTheSection() throws Exception {
        final Path file = messagesPolicy("json: { required: false }");
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out().strip())
                .isEqualTo(file + ":9:13: routes[0].messages.json: no schema"
                        + " (expected: schema, typeField and schemas, or required: true)");
    }

    @Test
    void missingSchemaFileIsReportedAtItsField() throws Exception {
        final Path file = messagesPolicy("json: { schema: missing.json }");
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out()).contains(file + ":9:23: routes[0].messages.json.schema: file not found: ");
    }

    @Test
    void badSanitizeFieldPathIsReportedAtTheEntry() throws Exception {
        final Path file = messagesPolicy("sanitize: { html: strip, fields: ['$.text', '$.items[*'] }");
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out().strip())
                .isEqualTo(file + ":9:51: routes[0].messages.sanitize.fields[1]: '$.items[*' is not a JSON path:"
                        + " unclosed '[' at column 8 (expected: a JSON path "
                        + "like $.text, $.user.name or $.items[*].title;"
                        + " supported: .name, ['name'], [n], [*])");
    }

    @Test
    void denyPatternRe2CannotRunIsReportedAtThePattern() throws Exception {
        final Path file = messagesPolicy("deny: [ { name: no-js, pattern: '(?i)java(?!script)' } ]");
        final Result result = run("check", "-c", file.toString());
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out())
                .contains(file + ":9:39: routes[0].messages.deny[0].pattern: not an RE2 regular expression:"
                        + " invalid or unsupported Perl syntax in `(?!`; "
                        + "lookaround and backreferences are not supported"
                        + " (expected: an RE2 regular expression)");
        assertThat(result.err()).doesNotContain("Exception");
    }

    @Test
    void missingOptionIsAUsageErrorWithExit2() {
        final Result result = run("check");
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.err()).contains("Missing required option");
    }
}
