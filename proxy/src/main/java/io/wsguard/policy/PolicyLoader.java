package io.wsguard.policy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Reads a policy file (docs/policy.md): YAML into located nodes, {@code ${ENV}} substitution in scalar
 * values, binding into {@link Policy} with defaults, and cross-field checks. Either everything is
 * right, or a {@link PolicyException} lists every problem with its line and column.
 *
 * <p>Stateless and thread-safe; reads the file and the files it refers to (existence only).
 */
public final class PolicyLoader {

    /** Larger files are refused before parsing: a policy is a few KiB. */
    static final int MAX_FILE_SIZE = 1 << 20;

    private PolicyLoader() {}

    /** Loads {@code file} with the process environment for {@code ${NAME}}. */
    public static LoadedPolicy load(Path file) {
        return load(file, System.getenv());
    }

    /**
     * Loads {@code file}, taking {@code ${NAME}} values from {@code env}.
     *
     * @throws PolicyException with every problem found, in file order
     */
    public static LoadedPolicy load(Path file, Map<String, String> env) {
        final List<PolicyProblem> problems = new ArrayList<>();
        final Optional<String> text = read(file, problems);
        if (text.isEmpty()) {
            throw new PolicyException(problems);
        }
        final Optional<YamlTree.YNode> root = YamlTree.parse(text.get(), file, problems);
        if (root.isEmpty()) {
            throw new PolicyException(problems);
        }
        final Binder binder = new Binder(file, env);
        final Optional<Policy> policy = binder.bind(root.get());
        problems.addAll(binder.problems());
        if (!problems.isEmpty() || policy.isEmpty()) {
            if (problems.isEmpty()) {
                // A bug, not a user error: refuse rather than run without a policy.
                problems.add(new PolicyProblem(file, 1, 1, "the policy could not be bound"));
            }
            final List<PolicyProblem> sorted = new ArrayList<>(problems);
            sorted.sort(Comparator.comparingInt(PolicyProblem::line).thenComparingInt(PolicyProblem::column));
            throw new PolicyException(sorted);
        }
        return new LoadedPolicy(policy.get(), binder.locations());
    }

    private static Optional<String> read(Path file, List<PolicyProblem> problems) {
        try {
            if (Files.size(file) > MAX_FILE_SIZE) {
                problems.add(new PolicyProblem(
                        file, 1, 1, "the file is larger than 1 MiB (expected: a policy of a few KiB)"));
                return Optional.empty();
            }
            final byte[] bytes = Files.readAllBytes(file);
            return Optional.of(StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString());
        } catch (NoSuchFileException e) {
            problems.add(new PolicyProblem(
                    file, 1, 1, "file not found: " + file.toAbsolutePath().normalize()));
        } catch (CharacterCodingException e) {
            problems.add(new PolicyProblem(file, 1, 1, "the file is not UTF-8 (expected: a UTF-8 YAML file)"));
        } catch (IOException e) {
            problems.add(new PolicyProblem(file, 1, 1, "cannot read the file: " + e.getMessage()));
        }
        return Optional.empty();
    }
}
