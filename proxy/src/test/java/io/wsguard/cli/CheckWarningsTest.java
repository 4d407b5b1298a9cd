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

/**
 * {@code wsguard check} warns, at the route, about a route served on a plain {@code ws://} listener
 * with neither {@code match.host} nor {@code origin.allow} (a DNS-rebinding page passes the default
 * same-origin rule there), and still prints OK and exits 0.
 */
class CheckWarningsTest {

    @TempDir
    Path dir;

    private record Result(int exit, List<String> out) {}

    private Result check(String listeners, String routes) throws Exception {
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, "version: 1\nlisteners:\n" + listeners.indent(2) + "routes:\n" + routes.indent(2));
        final StringWriter out = new StringWriter();
        final CommandLine cli = WsguardCommand.commandLine();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(new StringWriter()));
        final int exit = cli.execute("check", "-c", file.toString());
        if (exit == ExitCode.OK) {
            SchemaChecked.assertValid(file);
        }
        return new Result(exit, out.toString().lines().toList());
    }

    private static final String ROUTES = """
            - name: open
              match: { path: /open }
              upstream: { targets: [ws://127.0.0.1:9000/a] }
              auth: none
            - name: hosted
              match: { host: chat.example.com, path: /hosted }
              upstream: { targets: [ws://127.0.0.1:9000/b] }
              auth: none
            - name: listed
              match: { path: /listed }
              upstream: { targets: [ws://127.0.0.1:9000/c] }
              auth: none
              origin: { allow: [https://chat.example.com] }
            - name: open-too
              match: { pathPrefix: /too/ }
              upstream: { targets: [ws://127.0.0.1:9000/d] }
              auth: none
            """;

    @Test
    void aRouteWithoutHostOrAllowListOnAPlainListenerIsWarnedAboutAtTheRoute() throws Exception {
        final Result result = check("- { port: 0 }\n", ROUTES);
        final String file = dir.resolve("policy.yaml").toString();
        assertThat(result.exit()).isZero();
        assertThat(result.out())
                .containsExactly(
                        file
                                + ":5:5: warning: routes[0]: no match.host and no "
                                + "origin.allow, served on the plain ws:// listener 'ws-0': "
                                + "a DNS-rebinding page served on that port passes the default same-origin rule "
                                + "(expected: match.host, origin.allow, or TLS on the listener)",
                        file
                                + ":18:5: warning: routes[3]: no match.host and no "
                                + "origin.allow, served on the plain ws:// listener 'ws-0': "
                                + "a DNS-rebinding page served on that port passes the default same-origin rule "
                                + "(expected: match.host, origin.allow, or TLS on the listener)",
                        "OK");
    }

    @Test
    void tlsListenersOnlyGetNoWarning() throws Exception {
        DevCerts.ensure(dir.resolve("certs"));
        final Result result =
                check("- { port: 0, tls: { certificate: certs/server.crt, privateKey: certs/server.key } }\n", ROUTES);
        assertThat(result.exit()).isZero();
        assertThat(result.out()).containsExactly("OK");
    }

    @Test
    void aPlainListenerNextToATlsOneStillServesEveryRoute() throws Exception {
        DevCerts.ensure(dir.resolve("certs"));
        final Result result = check("""
                - { port: 0, tls: { certificate: certs/server.crt, privateKey: certs/server.key } }
                - { port: 0 }
                """, ROUTES);
        assertThat(result.exit()).isZero();
        assertThat(result.out()).hasSize(3).last().isEqualTo("OK");
        assertThat(result.out().get(0)).contains(": warning: routes[0]: ").contains("plain ws:// listener 'ws-0'");
    }

    @Test
    void aRouteTiedToTheTlsListenerOnlyGetsNoWarning() throws Exception {
        DevCerts.ensure(dir.resolve("certs"));
        final Result result =
                check("""
                - { name: secure, port: 0, tls: { certificate: certs/server.crt, privateKey: certs/server.key } }
                - { name: plain, port: 0 }
                """, ROUTES.replace("match: { path: /open }", "match: { path: /open, listeners: [secure] }"));
        assertThat(result.exit()).isZero();
        assertThat(result.out()).hasSize(2).last().isEqualTo("OK");
        assertThat(result.out().get(0)).contains(": warning: routes[3]: ").contains("plain ws:// listener 'plain'");
    }

    @Test
    void anInvalidPolicyPrintsItsProblemsOnly() throws Exception {
        // A path must start with '/'.
        final Result result = check("- { port: 0 }\n", ROUTES.replace("path: /open", "path: open"));
        assertThat(result.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(result.out())
                .isNotEmpty()
                .noneMatch(line -> line.contains("warning:"))
                .noneMatch(line -> line.equals("OK"));
    }
}
