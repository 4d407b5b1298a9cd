package io.wsguard.policy;

import io.wsguard.testing.SchemaChecked;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Writes test policies into a directory and loads them; the schema must accept what the loader accepts. */
final class PolicyFiles {

    /** A valid policy; lines: 1 version, 3 port, 5 name, 6 match, 7 upstream, 8 auth. */
    static final String MINIMAL = """
            version: 1
            listeners:
              - port: 8080
            routes:
              - name: chat
                match: { path: /chat }
                upstream: { targets: [ws://127.0.0.1:9000/chat] }
                auth: none
            """;

    private PolicyFiles() {}

    static Path write(Path dir, String yaml) {
        try {
            final Path file = dir.resolve("policy.yaml");
            Files.writeString(file, yaml);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The problems as printed by {@code wsguard check}, one per line; empty when the policy loads. */
    static String problems(Path dir, String yaml, Map<String, String> env) {
        try {
            SchemaChecked.load(write(dir, yaml), env);
            return "";
        } catch (PolicyException e) {
            return e.problems().stream().map(PolicyProblem::toString).collect(Collectors.joining("\n"));
        }
    }

    static List<PolicyProblem> problemList(Path dir, String yaml) {
        try {
            SchemaChecked.load(write(dir, yaml), Map.of());
            return List.of();
        } catch (PolicyException e) {
            return e.problems();
        }
    }
}
