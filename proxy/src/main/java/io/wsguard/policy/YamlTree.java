package io.wsguard.policy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.snakeyaml.engine.v2.api.LoadSettings;
import org.snakeyaml.engine.v2.api.lowlevel.Compose;
import org.snakeyaml.engine.v2.exceptions.Mark;
import org.snakeyaml.engine.v2.exceptions.MarkedYamlEngineException;
import org.snakeyaml.engine.v2.exceptions.YamlEngineException;
import org.snakeyaml.engine.v2.nodes.MappingNode;
import org.snakeyaml.engine.v2.nodes.Node;
import org.snakeyaml.engine.v2.nodes.NodeTuple;
import org.snakeyaml.engine.v2.nodes.ScalarNode;
import org.snakeyaml.engine.v2.nodes.SequenceNode;
import org.snakeyaml.engine.v2.nodes.Tag;

/**
 * The policy file as a tree of located nodes. Only snakeyaml-engine's composer runs: nothing is
 * constructed from tags, so a file cannot instantiate types; aliases, depth and node count are
 * bounded so that a small file cannot expand into a huge tree ("billion laughs").
 */
final class YamlTree {

    /** One node with its 1-based position. */
    sealed interface YNode permits Scalar, YMap, YList {
        int line();

        int column();

        /** For "got a map (expected: …)" messages. */
        String kind();
    }

    /**
     * A scalar as written; {@code type} is the YAML core schema's resolution: {@code str},
     * {@code int}, {@code float}, {@code bool} or {@code null}.
     */
    record Scalar(String text, String type, int line, int column) implements YNode {
        boolean isNull() {
            return type.equals("null");
        }

        @Override
        public String kind() {
            return isNull() ? "nothing" : "a scalar";
        }
    }

    /** A key and its value; keys are always scalars. */
    record Entry(Scalar key, YNode value) {}

    /** A mapping, in file order, duplicates kept (the binder reports them). */
    record YMap(List<Entry> entries, int line, int column) implements YNode {
        @Override
        public String kind() {
            return "a map";
        }
    }

    /** A sequence. */
    record YList(List<YNode> items, int line, int column) implements YNode {
        @Override
        public String kind() {
            return "a list";
        }
    }

    static final int MAX_DEPTH = 50;
    static final int MAX_NODES = 100_000;
    private static final int MAX_ALIASES = 50;
    private static final Set<String> CORE_TAGS = Set.of(
            Tag.STR.getValue(),
            Tag.INT.getValue(),
            Tag.FLOAT.getValue(),
            Tag.BOOL.getValue(),
            Tag.NULL.getValue(),
            Tag.MAP.getValue(),
            Tag.SEQ.getValue(),
            // The core schema resolves plain ${NAME} scalars to this tag; wsguard substitutes them itself.
            Tag.ENV_TAG.getValue());

    private final Path file;
    private final List<PolicyProblem> problems;
    private int nodes;

    private YamlTree(Path file, List<PolicyProblem> problems) {
        this.file = file;
        this.problems = problems;
    }

    /** Composes {@code text}; on failure adds problems and returns empty. */
    static Optional<YNode> parse(String text, Path file, List<PolicyProblem> problems) {
        final LoadSettings settings = LoadSettings.builder()
                .setLabel(file.toString())
                .setMaxAliasesForCollections(MAX_ALIASES)
                .setAllowRecursiveKeys(false)
                .setAllowNonScalarKeys(false)
                .setCodePointLimit(PolicyLoader.MAX_FILE_SIZE + 1)
                .setUseMarks(true)
                .build();
        final Optional<Node> root;
        try {
            root = new Compose(settings).composeString(text);
        } catch (MarkedYamlEngineException e) {
            final Optional<Mark> mark = e.getProblemMark().or(e::getContextMark);
            problems.add(new PolicyProblem(
                    file,
                    mark.map(m -> m.getLine() + 1).orElse(1),
                    mark.map(m -> m.getColumn() + 1).orElse(1),
                    "not valid YAML: " + e.getProblem() + " (expected: a YAML mapping that starts with version: 1)"));
            return Optional.empty();
        } catch (YamlEngineException e) {
            problems.add(new PolicyProblem(
                    file,
                    1,
                    1,
                    "not valid YAML: " + e.getMessage() + " (expected: a YAML mapping that starts with version: 1)"));
            return Optional.empty();
        } catch (StackOverflowError e) {
            // The composer recurses once per nesting level and has no depth setting: a file of
            // thousands of '[' must be a located problem, not a crash (nor a dead policy watcher).
            problems.add(new PolicyProblem(
                    file, 1, 1, "nested too deeply to read (expected: a policy nested a few levels deep)"));
            return Optional.empty();
        }
        if (root.isEmpty()) {
            problems.add(
                    new PolicyProblem(file, 1, 1, "the file is empty (expected: a policy starting with version: 1)"));
            return Optional.empty();
        }
        final YamlTree tree = new YamlTree(file, problems);
        return tree.convert(root.get(), 0, new IdentityHashMap<>());
    }

    private Optional<YNode> convert(Node node, int depth, Map<Node, Boolean> onPath) {
        final int line = node.getStartMark().map(m -> m.getLine() + 1).orElse(1);
        final int column = node.getStartMark().map(m -> m.getColumn() + 1).orElse(1);
        if (++nodes > MAX_NODES || depth > MAX_DEPTH) {
            problems.add(new PolicyProblem(
                    file,
                    line,
                    column,
                    "the document is too large or too deep (expected: at most " + MAX_NODES + " nodes, " + MAX_DEPTH
                            + " levels)"));
            return Optional.empty();
        }
        if (onPath.containsKey(node)) {
            problems.add(new PolicyProblem(file, line, column, "a recursive alias (expected: a tree)"));
            return Optional.empty();
        }
        if (!CORE_TAGS.contains(node.getTag().getValue())) {
            problems.add(new PolicyProblem(
                    file,
                    line,
                    column,
                    "tag '" + node.getTag().getValue() + "' is not allowed (expected: plain YAML without tags)"));
            return Optional.empty();
        }
        onPath.put(node, Boolean.TRUE);
        try {
            if (node instanceof ScalarNode scalar) {
                return Optional.of(new Scalar(scalar.getValue(), typeOf(scalar.getTag()), line, column));
            }
            if (node instanceof SequenceNode sequence) {
                final List<YNode> items = new ArrayList<>();
                for (Node item : sequence.getValue()) {
                    final Optional<YNode> converted = convert(item, depth + 1, onPath);
                    if (converted.isEmpty()) {
                        return Optional.empty();
                    }
                    items.add(converted.get());
                }
                return Optional.of(new YList(List.copyOf(items), line, column));
            }
            final MappingNode mapping = (MappingNode) node;
            final List<Entry> entries = new ArrayList<>();
            for (NodeTuple tuple : mapping.getValue()) {
                final Optional<YNode> key = convert(tuple.getKeyNode(), depth + 1, onPath);
                final Optional<YNode> value = convert(tuple.getValueNode(), depth + 1, onPath);
                if (key.isEmpty() || value.isEmpty()) {
                    return Optional.empty();
                }
                if (!(key.get() instanceof Scalar keyScalar)) {
                    problems.add(new PolicyProblem(
                            file,
                            key.get().line(),
                            key.get().column(),
                            key.get().kind() + " as a key (expected: a plain key)"));
                    return Optional.empty();
                }
                entries.add(new Entry(keyScalar, value.get()));
            }
            return Optional.of(new YMap(List.copyOf(entries), line, column));
        } finally {
            onPath.remove(node);
        }
    }

    private static String typeOf(Tag tag) {
        if (tag.equals(Tag.INT)) {
            return "int";
        }
        if (tag.equals(Tag.FLOAT)) {
            return "float";
        }
        if (tag.equals(Tag.BOOL)) {
            return "bool";
        }
        if (tag.equals(Tag.NULL)) {
            return "null";
        }
        return "str";
    }
}
