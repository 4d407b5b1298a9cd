package io.wsguard.policy;

import java.util.List;
import java.util.stream.Collectors;

/**
 * A policy file that wsguard refuses, with every problem found in it (not only the first), so that
 * {@code wsguard check} can print them all. The CLI turns it into exit code 2.
 */
public final class PolicyException extends RuntimeException {

    private final List<PolicyProblem> problems;

    public PolicyException(List<PolicyProblem> problems) {
        super(problems.stream().map(PolicyProblem::toString).collect(Collectors.joining("\n")));
        if (problems.isEmpty()) {
            throw new IllegalArgumentException("problems: [] (expected: at least one)");
        }
        this.problems = List.copyOf(problems);
    }

    /** Every problem, in file order. */
    public List<PolicyProblem> problems() {
        return problems;
    }
}
