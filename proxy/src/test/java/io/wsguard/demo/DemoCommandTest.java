package io.wsguard.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.cli.WsguardCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class DemoCommandTest {

    @Test
    void withoutTheDemoPolicyExitsTwoWithOneClearLine(@TempDir Path dir) {
        final StringWriter err = new StringWriter();
        final CommandLine cli = WsguardCommand.commandLine();
        cli.setErr(new PrintWriter(err));

        final int exit = cli.execute("demo", "--root", dir.toString());

        assertThat(exit).isEqualTo(2);
        assertThat(err.toString().strip())
                .isEqualTo("wsguard demo: no policies/demo.yaml in "
                        + dir.toAbsolutePath().normalize()
                        + " (run it from the wsguard repository, or pass --root DIR)");
    }

    @Test
    void isListedInTheUsage() {
        final StringWriter out = new StringWriter();
        final CommandLine cli = WsguardCommand.commandLine();
        cli.setOut(new PrintWriter(out));

        cli.execute("--help");

        assertThat(out.toString()).contains("demo");
    }
}
