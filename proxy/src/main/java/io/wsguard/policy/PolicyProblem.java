package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;

/**
 * One thing wrong with a policy file. {@code wsguard check} prints it as {@code FILE:LINE:COL: message}.
 *
 * @param file the policy file, as the caller named it
 * @param line 1-based
 * @param column 1-based
 * @param message {@code path: what (expected: …)}; never holds a secret's value
 */
public record PolicyProblem(Path file, int line, int column, String message) {

    public PolicyProblem {
        requireNonNull(file, "file");
        requireNonNull(message, "message");
    }

    @Override
    public String toString() {
        return file + ":" + line + ":" + column + ": " + message;
    }
}
