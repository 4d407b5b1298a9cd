package io.wsguard.cli;

import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyLoader;
import io.wsguard.policy.PolicyProblem;
import io.wsguard.policy.PolicyWarnings;
import io.wsguard.server.PolicyCheck;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code wsguard check -c FILE}: validates a policy and everything it references (README, CLI). */
@Command(
        name = "check",
        description =
                "Validate a policy file and everything it references; print OK (after any warnings) or every problem.")
public final class CheckCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(
            names = {"-c", "--config"},
            required = true,
            description = "The policy file.")
    Path config;

    @Override
    public Integer call() {
        final PrintWriter out = spec.commandLine().getOut();
        final LoadedPolicy loaded;
        try {
            loaded = PolicyLoader.load(config);
            PolicyCheck.compile(loaded);
        } catch (PolicyException e) {
            for (PolicyProblem problem : e.problems()) {
                out.println(problem);
            }
            out.flush();
            return ExitCode.INVALID;
        }
        // Only for a valid policy: its problems come first, and a warning may go once they are fixed.
        for (PolicyProblem warning : PolicyWarnings.of(loaded)) {
            out.println(
                    warning.file() + ":" + warning.line() + ":" + warning.column() + ": warning: " + warning.message());
        }
        out.println("OK");
        out.flush();
        return ExitCode.OK;
    }
}
