package io.wsguard.cli;

import io.wsguard.policy.PolicySchema;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code wsguard schema}: prints the policy file's JSON Schema (2020-12) on stdout, so that an
 * editor, a CI step or {@code check-jsonschema} can check a policy without the repository.
 */
@Command(name = "schema", description = "Print the JSON Schema (2020-12) of the policy file, for editors and linters.")
public final class SchemaCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().getOut().print(PolicySchema.text());
        spec.commandLine().getOut().flush();
        return ExitCode.OK;
    }
}
