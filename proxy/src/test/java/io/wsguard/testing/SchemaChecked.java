package io.wsguard.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.PolicyLoader;
import io.wsguard.policy.PolicySchema;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The policy JSON Schema ({@code schema/wsguard-policy.schema.json}, as the jar carries it) against
 * the policies the tests use: every policy text that the loader accepts in a test must validate too,
 * so that a key the binder learns without a schema entry fails the test that first uses it.
 * {@link RunningProxy}, the policy package's {@code PolicyFiles} and the tests that call the loader
 * directly go through here; nothing in the production code knows about it.
 */
public final class SchemaChecked {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Schema SCHEMA = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12)
            .getSchema(PolicySchema.text());

    private SchemaChecked() {}

    /** {@link PolicyLoader#load(Path, Map)}, then the schema must accept the same file. */
    public static LoadedPolicy load(Path file, Map<String, String> env) {
        final LoadedPolicy loaded = PolicyLoader.load(file, env);
        assertValid(file);
        return loaded;
    }

    /** Fails when the schema refuses the policy in {@code file}, which the loader accepted. */
    public static void assertValid(Path file) {
        assertValid(read(file), file.toString());
    }

    /** Fails when the schema refuses {@code yaml}, a policy the loader accepted, naming every error. */
    public static void assertValid(String yaml, String where) {
        assertThat(errors(yaml))
                .as("the loader accepted %s, so the policy schema must accept it too:%n%s", where, yaml)
                .isEmpty();
    }

    /** The schema's errors for {@code yaml}, one line each ({@code $.routes[0].mode: …}); empty when valid. */
    public static List<String> errors(String yaml) {
        return SCHEMA.validate(tree(yaml)).stream().map(Error::toString).toList();
    }

    /**
     * The YAML as the binder reads it: snakeyaml-engine with the settings of the policy loader (the
     * same scalar types: {@code yes} and {@code True} are strings, aliases expanded), as a JSON tree.
     */
    public static JsonNode tree(String yaml) {
        final Object document = new Load(LoadSettings.builder().build()).loadFromString(yaml);
        return JSON.valueToTree(document);
    }

    private static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
