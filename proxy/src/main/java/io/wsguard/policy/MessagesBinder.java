package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Binds {@code routes[].messages} into a {@link MessagePolicy}: sizes, types, JSON, sanitizing and deny
 * rules. A route without the section is bound from an empty map: its defaults hold on every route.
 */
final class MessagesBinder {

    private static final long ONE_GIB = 1L << 30;

    private final Values v;

    MessagesBinder(Values v) {
        this.v = v;
    }

    Optional<MessagePolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of(
                        "direction",
                        "maxSize",
                        "binary",
                        "compression",
                        "json",
                        "sanitize",
                        "deny",
                        "onViolation",
                        "maxFragments"),
                "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> direction = f.get("direction")
                .map(n -> v.choice(n, f.child("direction"), "inbound", "both"))
                .orElse(Optional.of("inbound"));
        final Optional<Long> maxSize = f.get("maxSize")
                .map(n -> v.size(n, f.child("maxSize"), 1, ONE_GIB))
                .orElse(Optional.of(MessagePolicy.DEFAULT_MAX_SIZE));
        final Optional<String> binary = f.get("binary")
                .map(n -> v.choice(n, f.child("binary"), "allow", "deny"))
                .orElse(Optional.of("allow"));
        final Optional<String> compression = f.get("compression")
                .map(n -> v.choice(n, f.child("compression"), "allow", "deny"))
                .orElse(Optional.of("deny"));
        final Optional<MessagePolicy.JsonPolicy> json = f.get("json").flatMap(n -> json(n, f.child("json")));
        final Optional<MessagePolicy.SanitizePolicy> sanitize =
                f.get("sanitize").flatMap(n -> sanitize(n, f.child("sanitize")));
        final List<MessagePolicy.DenyRulePolicy> deny =
                f.get("deny").map(n -> denyRules(n, f.child("deny"))).orElse(List.of());
        final Optional<String> onViolation = f.get("onViolation")
                .map(n -> v.choice(n, f.child("onViolation"), "close", "drop"))
                .orElse(Optional.of("close"));
        final Optional<Long> maxFragments = f.get("maxFragments")
                .map(n -> v.integer(n, f.child("maxFragments"), 1, Integer.MAX_VALUE)
                        .map(Integer::longValue))
                .orElseGet(() -> maxSize.map(MessagePolicy::defaultMaxFragments));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new MessagePolicy(
                Values.enumOf(MessagePolicy.Direction.class, direction.orElseThrow()),
                maxSize.orElseThrow(),
                binary.orElseThrow().equals("allow"),
                compression.orElseThrow().equals("allow"),
                json,
                sanitize,
                deny,
                Values.enumOf(Action.class, onViolation.orElseThrow()),
                maxFragments.orElseThrow()));
    }

    private Optional<MessagePolicy.JsonPolicy> json(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of("required", "schema", "typeField", "schemas"),
                "a map with required: true, schema, or typeField and schemas");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<Boolean> required =
                f.get("required").map(n -> v.bool(n, f.child("required"))).orElse(Optional.of(false));
        final Optional<Path> schema = f.get("schema").flatMap(n -> v.file(n, f.child("schema")));
        final Optional<String> typeField = f.get("typeField").flatMap(n -> v.text(n, f.child("typeField"), false));
        final Map<String, Path> schemas = new LinkedHashMap<>();
        f.get("schemas")
                .flatMap(n -> v.fields(n, f.child("schemas"), null, "a map of type to schema file"))
                .ifPresent(sf -> {
                    if (sf.keys().isEmpty()) {
                        v.problem(sf.map(), f.child("schemas"), "is empty (expected: at least one type: schema file)");
                    }
                    for (String type : sf.keys()) {
                        sf.get(type).flatMap(n -> v.file(n, sf.child(type))).ifPresent(p -> schemas.put(type, p));
                    }
                });
        final boolean one = f.has("schema");
        final boolean byType = f.has("typeField") || f.has("schemas");
        if (one && byType) {
            v.problem(f.map(), path, "both schema and typeField/schemas (expected: schema, or typeField and schemas)");
        } else if (!one && !byType && required.isPresent() && !required.get()) {
            // required: true alone means "every message is one well-formed JSON document"; without it
            // and a schema the section would check nothing a user could mean.
            v.problem(f.map(), path, "no schema (expected: schema, typeField and schemas, or required: true)");
        } else if (byType && f.has("typeField") != f.has("schemas")) {
            v.problem(
                    f.map(),
                    path,
                    (f.has("typeField") ? "typeField without schemas" : "schemas without typeField")
                            + " (expected: typeField and schemas together)");
        }
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new MessagePolicy.JsonPolicy(required.orElseThrow(), schema, typeField, schemas));
    }

    private Optional<MessagePolicy.SanitizePolicy> sanitize(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("html", "fields"), "a map with html");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> html = f.get("html")
                .map(n -> v.choice(n, f.child("html"), "strip", "formatting", "none"))
                .orElse(Optional.of("strip"));
        final List<String> jsonPaths = f.get("fields")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("fields"), "a list of JSON paths like $.text");
                    for (int i = 0; i < out.size(); i++) {
                        if (!out.get(i).startsWith("$")) {
                            v.problemAt(
                                    f.child("fields") + "[" + i + "]",
                                    "'" + out.get(i) + "' is not a JSON path (expected: like $.text)");
                        }
                    }
                    return out;
                })
                .orElse(List.of());
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new MessagePolicy.SanitizePolicy(
                Values.enumOf(MessagePolicy.Html.class, html.orElseThrow()), jsonPaths));
    }

    private List<MessagePolicy.DenyRulePolicy> denyRules(YNode node, String path) {
        final List<MessagePolicy.DenyRulePolicy> rules = new ArrayList<>();
        v.list(node, path, "a list of {name, pattern}").ifPresent(items -> {
            final Set<String> names = new HashSet<>();
            for (int i = 0; i < items.items().size(); i++) {
                final String itemPath = path + "[" + i + "]";
                v.fields(items.items().get(i), itemPath, List.of("name", "pattern"), "a map with name and pattern")
                        .ifPresent(rf -> {
                            final Optional<String> name = rf.required("name", "name: a rule name")
                                    .flatMap(n -> v.parse(n, rf.child("name"), text -> {
                                        if (!Values.NAME.matcher(text).matches()) {
                                            throw new IllegalArgumentException("'" + text
                                                    + "' is not a rule name (expected: "
                                                    + "letters, digits, '_', '.', '-')");
                                        }
                                        if (!names.add(text)) {
                                            throw new IllegalArgumentException("'" + text
                                                    + "' is already the name of another rule (expected: unique names)");
                                        }
                                        return text;
                                    }));
                            final Optional<String> pattern = rf.required(
                                            "pattern", "pattern: an RE2 regular expression")
                                    .flatMap(n -> v.parse(n, rf.child("pattern"), text -> {
                                        MessagePolicy.DenyRulePolicy.compile(text);
                                        return text;
                                    }));
                            if (name.isPresent() && pattern.isPresent()) {
                                rules.add(new MessagePolicy.DenyRulePolicy(name.get(), pattern.get()));
                            }
                        });
            }
        });
        return rules;
    }
}
