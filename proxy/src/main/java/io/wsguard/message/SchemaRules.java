package io.wsguard.message;

import com.networknt.schema.Error;
import com.networknt.schema.ExecutionConfig;
import com.networknt.schema.InvalidSchemaRefException;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SchemaRegistryConfig;
import com.networknt.schema.SpecificationVersion;
import com.networknt.schema.ValidationLimitExceededException;
import com.networknt.schema.path.NodePath;
import io.wsguard.policy.MessagePolicy;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code messages.json.schema}, or {@code typeField} + {@code schemas}: JSON Schema (draft 2020-12
 * unless a file says otherwise, networknt's validator) compiled once per route.
 *
 * <p>Compiling reads each file, checks it against its dialect's meta-schema and resolves every
 * {@code $ref} now, so that a broken schema fails {@code wsguard check}, not the first message.
 * Nothing is ever fetched: networknt's default loader reads neither the network nor other files
 * (only its bundled meta-schemas), so a {@code $ref} outside the file is a compile error.
 * Validation stops at the first error ({@code failFast}), matches patterns with RE2/J, and gives
 * up past a number of evaluation steps proportional to {@code maxSize}.
 *
 * <p>{@code format} is an annotation, not an assertion (draft 2020-12's default), on purpose:
 * networknt's format checkers run {@code java.util.regex} on the client's string, and "hostname" and
 * "uri-template" overflow the stack on a 60 KB one (tested), while "regex" would compile the client's
 * string as a pattern. Schemas check strings with {@code pattern}, which runs on RE2/J.
 *
 * <p>Violations are described from the instance location, the keyword and the schema's side of it,
 * never from networknt's messages: several quote the offending value ({@code const},
 * {@code additionalProperties}, {@code propertyNames}), and the detail goes to the audit log (README, Audit log).
 */
final class SchemaRules {

    static final String DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema";
    private static final long MAX_SCHEMA_FILE = 1 << 20;

    /** Schema files are the operator's: strict (duplicate keys would make one of two rules vanish). */
    private static final JsonMapper SCHEMA_READER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** Meta-schema checks run once per file, without the per-message limits. */
    private static final SchemaRegistry META = SchemaRegistry.withDefaultDialect(
            SpecificationVersion.DRAFT_2020_12,
            builder -> builder.schemaRegistryConfig(
                    SchemaRegistryConfig.builder().failFast(true).build()));

    private final Schema single;
    private final String typeField;
    private final Map<String, Schema> byType;
    private final String typeNames;
    private final long maxSteps;

    private SchemaRules(Schema single, String typeField, Map<String, Schema> byType, long maxSteps) {
        this.single = single;
        this.typeField = typeField;
        this.byType = byType;
        this.typeNames = String.join(", ", new TreeMap<>(byType).keySet());
        this.maxSteps = maxSteps;
    }

    /** Compiles the schemas of {@code json}; null when it names none. */
    static SchemaRules compile(MessagePolicy.JsonPolicy json, long maxSize) {
        // A legitimate document of maxSize bytes holds at most maxSize/2 values; 16 steps per byte
        // leaves room for schemas that evaluate each value several times, and bounds hostile ones.
        final long maxSteps = Math.max(100_000, 16 * maxSize);
        final ExecutionConfig execution = ExecutionConfig.builder()
                .failFast(true)
                .formatAssertionsEnabled(false)
                .maxEvaluationSteps(maxSteps)
                .build();
        final SchemaRegistry registry = SchemaRegistry.withDefaultDialect(
                SpecificationVersion.DRAFT_2020_12,
                builder -> builder.schemaRegistryConfig(SchemaRegistryConfig.builder()
                                .failFast(true)
                                .formatAssertionsEnabled(false)
                                .regularExpressionFactory(Re2RegularExpressions.INSTANCE)
                                .executionContextCustomizer(
                                        (context, schemaContext) -> context.setExecutionConfig(execution))
                                .build())
                        // The default already; said here so that no future default can start fetching.
                        .schemaLoader(loader -> loader.fetchRemoteResources(false)));
        if (json.schema().isPresent()) {
            return new SchemaRules(
                    load(registry, json.schema().get(), "messages.json.schema"), null, Map.of(), maxSteps);
        }
        if (json.typeField().isEmpty() || json.schemas().isEmpty()) {
            return null;
        }
        final Map<String, Schema> byType = new LinkedHashMap<>();
        for (Map.Entry<String, Path> entry : new TreeMap<>(json.schemas()).entrySet()) {
            byType.put(entry.getKey(), load(registry, entry.getValue(), "messages.json.schemas." + entry.getKey()));
        }
        return new SchemaRules(null, json.typeField().get(), Map.copyOf(byType), maxSteps);
    }

    /** Reads, checks and compiles one schema file; a failure names {@code field}. */
    private static Schema load(SchemaRegistry registry, Path file, String field) {
        final byte[] bytes;
        try {
            if (Files.size(file) > MAX_SCHEMA_FILE) {
                throw new ContentRulesException(field, file + ": larger than 1 MiB (expected: a JSON Schema file)");
            }
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ContentRulesException(field, "file not found: " + file, e);
        } catch (IOException e) {
            throw new ContentRulesException(field, "cannot read " + file + ": " + e.getMessage(), e);
        }
        final JsonNode node;
        try {
            node = SCHEMA_READER.readTree(bytes);
        } catch (JacksonException e) {
            final TokenStreamLocation at = e.getLocation();
            final String where = at == null ? "" : ":" + at.getLineNr() + ":" + at.getColumnNr();
            throw new ContentRulesException(
                    field,
                    file + where + ": not JSON: " + e.getOriginalMessage() + " (expected: a JSON Schema file)",
                    e);
        }
        if (node == null || node.isMissingNode()) {
            throw new ContentRulesException(field, file + ": empty (expected: a JSON Schema file)");
        }
        if (!node.isObject() && !node.isBoolean()) {
            throw new ContentRulesException(
                    field,
                    file + ": not a JSON Schema: the document is not an object"
                            + " (expected: a JSON Schema file, like {\"type\": \"object\", …})");
        }
        checkAgainstMetaSchema(node, file, field);
        try {
            final Schema schema =
                    registry.getSchema(SchemaLocation.of(file.toUri().toString()), node);
            // Resolve every $ref and compile every pattern now, not on the first message.
            schema.initializeValidators();
            return schema;
        } catch (RuntimeException e) {
            throw new ContentRulesException(field, file + ": " + explain(e), e);
        }
    }

    private static void checkAgainstMetaSchema(JsonNode node, Path file, String field) {
        if (!node.isObject()) {
            return;
        }
        final JsonNode declared = node.get("$schema");
        final String dialect = declared != null && declared.isString() ? declared.stringValue() : DRAFT_2020_12;
        final Schema meta;
        try {
            meta = META.getSchema(SchemaLocation.of(dialect));
        } catch (RuntimeException e) {
            throw new ContentRulesException(
                    field,
                    file + ": unknown $schema '" + JsonPaths.shorten(dialect, 100)
                            + "' (expected: a JSON Schema draft such as " + DRAFT_2020_12 + ", or no $schema)",
                    e);
        }
        final List<Error> errors;
        try {
            errors = meta.validate(node);
        } catch (RuntimeException e) {
            throw new ContentRulesException(
                    field, file + ": cannot be checked against " + dialect + ": " + explain(e), e);
        }
        if (!errors.isEmpty()) {
            throw new ContentRulesException(
                    field,
                    file + ": not a valid JSON Schema: " + describe(errors.get(0))
                            + " (expected: a schema valid against " + dialect + ")");
        }
    }

    /** Why networknt could not compile a schema, in the user's terms. */
    private static String explain(RuntimeException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof FileNotFoundException) {
                return "$ref '" + JsonPaths.shorten(t.getMessage(), 200)
                        + "' cannot be resolved: wsguard never fetches schemas"
                        + " from the network or from other files (expected: "
                        + "references inside the schema file, like #/$defs/name)";
            }
            if (t instanceof IllegalArgumentException
                    && String.valueOf(t.getMessage()).startsWith("not an RE2 regular expression")) {
                // From MessagePolicy.DenyRulePolicy.compile, which Re2RegularExpressions uses.
                return "a pattern is " + t.getMessage();
            }
            if (t instanceof InvalidSchemaRefException) {
                return JsonPaths.shorten(String.valueOf(t.getMessage()), 200)
                        + " (expected: references inside the schema file, like #/$defs/name)";
            }
        }
        return JsonPaths.shorten(String.valueOf(e.getMessage()), 200);
    }

    /** The violation of {@code root}, or null when it is valid. */
    String violation(JsonNode root) {
        Schema schema = single;
        if (schema == null) {
            final String at = "$"
                    + (JsonPaths.isPlain(typeField) ? "." + typeField : "['" + JsonPaths.shorten(typeField, 32) + "']");
            if (!root.isObject()) {
                return "$: expected object (with " + at.substring(1) + ": one of " + typeNames + ")";
            }
            final JsonNode type = root.get(typeField);
            if (type == null) {
                return at + ": missing (expected: one of " + typeNames + ")";
            }
            schema = type.isString() ? byType.get(type.stringValue()) : null;
            if (schema == null) {
                return at + ": not one of " + typeNames;
            }
        }
        final List<Error> errors;
        try {
            errors = schema.validate(root);
        } catch (ValidationLimitExceededException e) {
            return "$: too costly to validate (more than " + maxSteps + " schema evaluation steps)";
        }
        return errors.isEmpty() ? null : describe(errors.get(0));
    }

    /** {@code $.text: expected string}: the location, then what the schema wanted, never the value. */
    static String describe(Error error) {
        final String keyword = error.getKeyword() == null ? "" : error.getKeyword();
        final JsonNode s = error.getSchemaNode();
        final NodePath instance = error.getInstanceLocation();
        if (evaluatedUnder(error, "propertyNames")) {
            // Reported at the member's own path, which is the name itself: point at the object.
            return path(instance, 1) + ": property name not allowed (" + safeKeyword(keyword) + ")";
        }
        final String detail = describeKeyword(error, keyword, s, path(instance, 0));
        // failFast reports an anyOf that matched nothing by its first alternative's complaint: say so.
        return evaluatedUnder(error, "anyOf") ? detail + " (no anyOf alternative matched)" : detail;
    }

    private static String describeKeyword(Error error, String keyword, JsonNode s, String at) {
        return switch (keyword) {
            case "additionalProperties", "unevaluatedProperties" -> {
                final StringBuilder out = new StringBuilder(at);
                JsonPaths.appendName(out, error.getProperty());
                yield out.append(": property not allowed").toString();
            }
            case "required", "dependentRequired" ->
                at + ": required property '" + JsonPaths.shorten(String.valueOf(error.getProperty()), 64) + "' missing";
            case "items", "prefixItems", "additionalItems", "unevaluatedItems" ->
                at + (error.getIndex() == null ? "" : "[" + error.getIndex() + "]") + ": item not allowed";
            default -> at + ": " + expectation(keyword, s);
        };
    }

    private static String expectation(String keyword, JsonNode s) {
        return switch (keyword) {
            case "type" -> "expected " + types(s);
            case "const" ->
                s != null && s.isValueNode() && s.toString().length() <= 40
                        ? "expected " + s
                        : "not the allowed constant";
            case "enum" -> "not one of " + values(s);
            case "pattern" -> "does not match " + JsonPaths.shorten(text(s), 64);
            case "format" -> "not a valid " + JsonPaths.shorten(text(s), 32);
            case "minLength" -> "shorter than " + s + " characters";
            case "maxLength" -> "longer than " + s + " characters";
            case "minimum" -> "less than " + s;
            case "maximum" -> "greater than " + s;
            case "exclusiveMinimum" -> "not greater than " + s;
            case "exclusiveMaximum" -> "not less than " + s;
            case "multipleOf" -> "not a multiple of " + s;
            case "minItems" -> "fewer than " + s + " items";
            case "maxItems" -> "more than " + s + " items";
            case "uniqueItems" -> "items are not unique";
            case "minProperties" -> "fewer than " + s + " properties";
            case "maxProperties" -> "more than " + s + " properties";
            case "false" -> "not allowed";
            case "not" -> "matches a schema it must not match";
            case "oneOf" -> "does not match exactly one of the allowed schemas";
            case "anyOf" -> "does not match any of the allowed schemas";
            case "allOf" -> "does not match all of the required schemas";
            case "contains", "minContains", "maxContains" -> "does not contain the required items";
            case "$ref" -> "does not match the referenced schema";
            default -> "fails " + safeKeyword(keyword);
        };
    }

    private static boolean evaluatedUnder(Error error, String keyword) {
        final NodePath path = error.getEvaluationPath();
        if (path == null) {
            return false;
        }
        for (int i = 0; i < path.getNameCount(); i++) {
            if (keyword.equals(path.getElement(i))) {
                return true;
            }
        }
        return false;
    }

    /** {@code $.a[1].b}, leaving out the last {@code dropLast} elements. */
    private static String path(NodePath path, int dropLast) {
        final StringBuilder out = new StringBuilder("$");
        if (path == null) {
            return out.toString();
        }
        for (int i = 0; i < path.getNameCount() - dropLast; i++) {
            final Object element = path.getElement(i);
            if (element instanceof Integer index) {
                out.append('[').append(index).append(']');
            } else {
                JsonPaths.appendName(out, String.valueOf(element));
            }
        }
        return out.toString();
    }

    private static String types(JsonNode s) {
        if (s == null) {
            return "another type";
        }
        if (s.isArray()) {
            final StringBuilder out = new StringBuilder();
            for (JsonNode t : s) {
                out.append(out.length() == 0 ? "" : " or ").append(JsonPaths.shorten(text(t), 16));
            }
            return out.toString();
        }
        return JsonPaths.shorten(text(s), 16);
    }

    private static String values(JsonNode s) {
        if (s == null || !s.isArray()) {
            return "the allowed values";
        }
        final StringBuilder out = new StringBuilder();
        for (JsonNode v : s) {
            out.append(out.length() == 0 ? "" : ", ").append(v.isString() ? v.stringValue() : v.toString());
        }
        return JsonPaths.shorten(out.toString(), 100);
    }

    private static String text(JsonNode s) {
        return s == null ? "" : s.isString() ? s.stringValue() : s.toString();
    }

    private static String safeKeyword(String keyword) {
        return JsonPaths.isPlain(keyword.replace("$", "")) ? keyword : "a keyword";
    }
}
