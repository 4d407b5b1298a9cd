package io.wsguard.policy;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The policy file's JSON Schema, {@code schema/wsguard-policy.schema.json} at the repository root,
 * which the build copies into the jar. Tests keep it and the binders from drifting apart.
 */
public final class PolicySchema {

    /** Where the build puts it on the classpath. */
    static final String RESOURCE = "wsguard-policy.schema.json";

    private PolicySchema() {}

    /** The schema as written, UTF-8 JSON. */
    public static String text() {
        try (InputStream in = PolicySchema.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                // A build without the resource is broken, not a user error.
                throw new IllegalStateException("the jar holds no " + RESOURCE);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
