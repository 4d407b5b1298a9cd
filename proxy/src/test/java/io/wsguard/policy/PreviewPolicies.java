package io.wsguard.policy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Loads a policy as {@link PolicyLoader} does, except that features {@link Enforcement} lists as
 * not enforced yet are let through: tests of the later stages (the policy compiler) can then
 * exercise them before the relay enforces them. Every other problem still fails the load.
 */
public final class PreviewPolicies {

    private PreviewPolicies() {}

    public static LoadedPolicy load(Path file) {
        final String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        final List<PolicyProblem> problems = new ArrayList<>();
        final Optional<YamlTree.YNode> root = YamlTree.parse(text, file, problems);
        if (root.isEmpty()) {
            throw new PolicyException(problems);
        }
        final Binder binder = new Binder(file, Map.of());
        final Optional<Policy> policy = binder.bind(root.get());
        binder.problems().stream().filter(p -> !p.message().endsWith(Enforcement.MESSAGE)).forEach(problems::add);
        if (!problems.isEmpty()) {
            throw new PolicyException(problems);
        }
        return new LoadedPolicy(policy.orElseThrow(), binder.locations());
    }
}
