package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Where each value of a policy file was written, by its YAML path ({@code listeners[0].tls.certificate},
 * {@code routes[1].upstream.tls.trustedCAs}). Code that fails after binding (TLS, schema compilation)
 * uses {@link #at} to report a located {@link PolicyProblem}.
 *
 * <p>A scalar's location is its value's; a map's or a list's is its key's, which is where a reader looks.
 */
public final class PolicyLocations {

    /** A 1-based line and column. */
    public record Location(int line, int column) {}

    private final Path file;
    private final Map<String, Location> byPath;

    PolicyLocations(Path file, Map<String, Location> byPath) {
        this.file = requireNonNull(file, "file");
        this.byPath = Map.copyOf(byPath);
    }

    /** The policy file, as the caller of {@link PolicyLoader#load} named it. */
    public Path file() {
        return file;
    }

    /** Where {@code path} was written, if it was. */
    public Optional<Location> find(String path) {
        return Optional.ofNullable(byPath.get(path));
    }

    /**
     * A problem at {@code path}, with the message {@code path: message}. When {@code path} itself was
     * not written (a default), the nearest written ancestor's location is used, then 1:1.
     */
    public PolicyProblem at(String path, String message) {
        String current = path;
        while (!current.isEmpty()) {
            final Location location = byPath.get(current);
            if (location != null) {
                return new PolicyProblem(file, location.line(), location.column(), path + ": " + message);
            }
            current = parent(current);
        }
        return new PolicyProblem(file, 1, 1, path + ": " + message);
    }

    /** {@code a.b[2]} → {@code a.b}; {@code a.b} → {@code a}; {@code a} → empty. */
    static String parent(String path) {
        final int cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
        return cut < 0 ? "" : path.substring(0, cut);
    }
}
