package io.wsguard.cli;

import io.wsguard.Version;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The top-level command; its subcommands do the work. */
@Command(
        name = "wsguard",
        mixinStandardHelpOptions = true,
        versionProvider = WsguardCommand.BuildVersion.class,
        description = "A security-hardening reverse proxy for WebSocket traffic.",
        subcommands = {
            RunCommand.class,
            CheckCommand.class,
            TokenCommand.class,
            AuditCommand.class,
            DemoCommand.class,
            SchemaCommand.class
        })
public final class WsguardCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The configured command line: usage errors exit 2, unexpected failures exit 1 with one line. */
    public static CommandLine commandLine() {
        final CommandLine commandLine = new CommandLine(new WsguardCommand());
        commandLine.setExitCodeExceptionMapper(e -> ExitCode.RUNTIME_FAILURE);
        commandLine.setParameterExceptionHandler((e, args) -> {
            final PrintWriter err = e.getCommandLine().getErr();
            err.println("wsguard: " + e.getMessage());
            err.println("Try 'wsguard " + e.getCommandLine().getCommandName() + " --help'.");
            return ExitCode.INVALID;
        });
        commandLine.setExecutionExceptionHandler((e, cmd, parseResult) -> {
            cmd.getErr().println("wsguard: " + e.getMessage());
            return ExitCode.RUNTIME_FAILURE;
        });
        return commandLine;
    }

    /** {@code --version}: the build's version and commit, e.g. {@code wsguard 0.1.0 (commit f6b88b2)}. */
    static final class BuildVersion implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {Version.describe()};
        }
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }
}
