package io.wsguard.policy;

import io.wsguard.policy.PolicyLocations.Location;
import io.wsguard.policy.YamlTree.Entry;
import io.wsguard.policy.YamlTree.Scalar;
import io.wsguard.policy.YamlTree.YList;
import io.wsguard.policy.YamlTree.YMap;
import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * The value layer of binding one policy file: reads scalars, lists and maps into values, and turns
 * each failure into a {@link PolicyProblem} at that value's line and column, so that
 * the section binders collect every problem instead of stopping at the first. Also records where each
 * value read was written, for problems found later ({@link #locations()}).
 *
 * <p>One instance per file, used by one thread.
 */
final class Values {

    /** Names of listeners, routes and deny rules. */
    static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.-]+");
    /** A host name's labels. */
    static final Pattern HOST_LABELS = Pattern.compile("[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*");

    private final Path file;
    private final Path baseDir;
    private final EnvSubstitution env;
    private final List<PolicyProblem> problems = new ArrayList<>();
    private final Map<String, Location> locations = new HashMap<>();

    Values(Path file, Map<String, String> env) {
        this.file = file;
        final Path parent = file.toAbsolutePath().normalize().getParent();
        this.baseDir = parent == null ? Path.of("").toAbsolutePath() : parent;
        this.env = new EnvSubstitution(env);
    }

    List<PolicyProblem> problems() {
        return List.copyOf(problems);
    }

    /** How many problems so far: a binder compares it before and after its section. */
    int problemCount() {
        return problems.size();
    }

    PolicyLocations locations() {
        return new PolicyLocations(file, locations);
    }

    /** Whether {@code path} was read from the file (not defaulted). */
    boolean written(String path) {
        return locations.containsKey(path);
    }

    void locate(String path, YNode at) {
        locations.put(path, new Location(at.line(), at.column()));
    }

    /** Records where the entry at {@code path} was written: a scalar's value, a map's or a list's key. */
    void locate(String path, Entry entry) {
        locations.put(
                path,
                entry.value() instanceof Scalar
                        ? new Location(entry.value().line(), entry.value().column())
                        : new Location(entry.key().line(), entry.key().column()));
    }

    // ---------------------------------------------------------------- maps and lists

    /** A map's entries, checked against {@code allowed} (null: any key, for maps of names to values). */
    Optional<Fields> fields(YNode node, String path, List<String> allowed, String expected) {
        if (!(node instanceof YMap map)) {
            problem(node, path, "got " + node.kind() + " (expected: " + expected + ")");
            return Optional.empty();
        }
        final Map<String, Entry> byKey = new LinkedHashMap<>();
        for (Entry entry : map.entries()) {
            final String key = entry.key().text();
            final String keyPath = path.isEmpty() ? key : path + "." + key;
            final Entry first = byKey.putIfAbsent(key, entry);
            if (first != null) {
                problem(
                        entry.key(),
                        keyPath,
                        "duplicate key, first at " + first.key().line() + ":"
                                + first.key().column() + " (expected: each key once)");
            } else if (allowed != null && !allowed.contains(key)) {
                problem(entry.key(), keyPath, "unknown key (expected: one of " + String.join(", ", allowed) + ")");
                byKey.remove(key);
            }
        }
        return Optional.of(new Fields(this, map, path, byKey));
    }

    Optional<YList> list(YNode node, String path, String expected) {
        if (!(node instanceof YList list)) {
            problem(node, path, "got " + node.kind() + " (expected: " + expected + ")");
            return Optional.empty();
        }
        for (int i = 0; i < list.items().size(); i++) {
            locate(path + "[" + i + "]", list.items().get(i));
        }
        return Optional.of(list);
    }

    List<String> stringList(YNode node, String path, String expected) {
        final List<String> out = new ArrayList<>();
        list(node, path, expected).ifPresent(items -> {
            for (int i = 0; i < items.items().size(); i++) {
                text(items.items().get(i), path + "[" + i + "]", false).ifPresent(out::add);
            }
        });
        return out;
    }

    // ---------------------------------------------------------------- scalars

    /** A scalar's text after {@code ${…}} substitution ({@code ${jwt.CLAIM}} kept when {@code allowJwtClaims}). */
    Optional<String> text(YNode node, String path, boolean allowJwtClaims) {
        if (!(node instanceof Scalar scalar) || scalar.isNull()) {
            problem(node, path, "got " + node.kind() + " (expected: a value)");
            return Optional.empty();
        }
        try {
            return Optional.of(env.substitute(scalar.text(), allowJwtClaims));
        } catch (IllegalArgumentException e) {
            problem(node, path, e.getMessage());
            return Optional.empty();
        }
    }

    /** Parses one value; a failure becomes a problem at that value's line and column. */
    <T> Optional<T> parse(YNode node, String path, Function<String, T> parser) {
        return text(node, path, false).flatMap(text -> {
            try {
                return Optional.of(parser.apply(text));
            } catch (IllegalArgumentException e) {
                problem(node, path, e.getMessage());
                return Optional.empty();
            }
        });
    }

    Optional<Integer> integer(YNode node, String path, long min, long max) {
        return parse(node, path, text -> {
            final long value;
            try {
                value = Long.parseLong(text.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                        "'" + text + "' is not an integer (expected: " + min + ".." + max + ")");
            }
            if (value < min || value > max) {
                throw new IllegalArgumentException(value + " is out of range (expected: " + min + ".." + max + ")");
            }
            return (int) value;
        });
    }

    Optional<Long> size(YNode node, String path, long min, long max) {
        return parse(node, path, text -> {
            final long value = Units.bytes(text);
            if (value < min || value > max) {
                throw new IllegalArgumentException(
                        "'" + text + "' is out of range (expected: " + sizeText(min) + ".." + sizeText(max) + ")");
            }
            return value;
        });
    }

    private static String sizeText(long bytes) {
        if (bytes == Long.MAX_VALUE) {
            return "";
        }
        if (bytes >= (1 << 30) && bytes % (1 << 30) == 0) {
            return (bytes >> 30) + "GiB";
        }
        if (bytes >= (1 << 10) && bytes % (1 << 10) == 0) {
            return (bytes >> 10) + "KiB";
        }
        return Long.toString(bytes);
    }

    Optional<Duration> duration(YNode node, String path, boolean positive) {
        return parse(node, path, text -> {
            final Duration value = Units.duration(text);
            if (positive && value.isZero()) {
                throw new IllegalArgumentException("'" + text + "' is zero (expected: a duration > 0)");
            }
            return value;
        });
    }

    Optional<Boolean> bool(YNode node, String path) {
        return parse(node, path, text -> {
            if (text.equals("true") || text.equals("false")) {
                return Boolean.valueOf(text);
            }
            throw new IllegalArgumentException("'" + text + "' is not a boolean (expected: true or false)");
        });
    }

    /** One of {@code options}, as written in the YAML (lower case). */
    Optional<String> choice(YNode node, String path, String... options) {
        return parse(node, path, text -> {
            if (List.of(options).contains(text)) {
                return text;
            }
            throw new IllegalArgumentException(
                    "'" + text + "' is not allowed (expected: " + String.join(" or ", options) + ")");
        });
    }

    /** An IP address or a host name to bind to. */
    Optional<String> host(YNode node, String path) {
        return parse(node, path, text -> {
            if (text.isEmpty() || !(HOST_LABELS.matcher(text).matches() || text.contains(":"))) {
                throw new IllegalArgumentException(
                        "'" + text + "' is not a host (expected: an IP address or a host name)");
            }
            return text;
        });
    }

    /** A file the policy refers to: resolved against the policy file's directory, and readable now. */
    Optional<Path> file(YNode node, String path) {
        return parse(node, path, text -> {
            if (text.isBlank()) {
                throw new IllegalArgumentException("is empty (expected: a file path)");
            }
            final Path resolved = resolve(text);
            if (!Files.exists(resolved)) {
                throw new IllegalArgumentException("file not found: " + resolved);
            }
            if (!Files.isRegularFile(resolved) || !Files.isReadable(resolved)) {
                throw new IllegalArgumentException("not a readable regular file: " + resolved);
            }
            return resolved;
        });
    }

    /** {@code text} as a path relative to the policy file's directory. */
    Path resolve(String text) {
        return baseDir.resolve(text).normalize();
    }

    Optional<Secret> secret(YNode node, String path) {
        // Never echo the value: type errors name only the kind of node.
        if (!(node instanceof Scalar scalar) || scalar.isNull()) {
            problem(node, path, "got " + node.kind() + " (expected: a secret, like ${NAME})");
            return Optional.empty();
        }
        return text(node, path, false).map(Secret::new);
    }

    static URI uri(String text, String expected) {
        try {
            return new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(
                    "'" + Redaction.uri(text) + "' is not a URI: " + e.getReason() + " (expected: " + expected + ")");
        }
    }

    static <E extends Enum<E>> E enumOf(Class<E> type, String yaml) {
        return Enum.valueOf(type, yaml.replace('-', '_').toUpperCase(Locale.ROOT));
    }

    // ---------------------------------------------------------------- problems

    void problem(YNode at, String path, String message) {
        problems.add(new PolicyProblem(file, at.line(), at.column(), path.isEmpty() ? message : path + ": " + message));
    }

    /** A problem at a path already read (cross-field checks). */
    void problemAt(String path, String message) {
        problems.add(locations().at(path, message));
    }
}
