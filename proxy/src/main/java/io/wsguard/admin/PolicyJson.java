package io.wsguard.admin;

import io.wsguard.policy.Rate;
import io.wsguard.policy.Secret;
import java.nio.file.Path;
import java.time.Duration;
import tools.jackson.core.JsonGenerator;
import tools.jackson.databind.MapperFeature;
import tools.jackson.databind.SerializationContext;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.cfg.DateTimeFeature;
import tools.jackson.databind.cfg.EnumFeature;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.module.SimpleModule;
import tools.jackson.databind.ser.std.StdSerializer;
import tools.jackson.databind.ser.std.ToStringSerializer;

/**
 * Renders the admin port's JSON: the effective policy, connection lists and small status objects.
 *
 * <p>Values read the way the policy file writes them, so that {@code GET /admin/policy} can be
 * compared with the YAML: records in declaration order, enums in lower case, durations as
 * {@code 30s}/{@code 250ms}, rates as {@code 50/s}, paths as plain paths, instants in ISO-8601.
 * Every {@link Secret}, wherever it sits (inside an {@code Optional}, a list, a map), is written as
 * {@code "<redacted>"}: redaction is by type, so a new secret field cannot leak by being forgotten.
 */
final class PolicyJson {

    private static final JsonMapper MAPPER = JsonMapper.builder()
            .addModule(new SimpleModule("wsguard-policy")
                               .addSerializer(Secret.class, new SecretSerializer())
                               .addSerializer(Duration.class, new DurationSerializer())
                               .addSerializer(Path.class, ToStringSerializer.instance)
                               .addSerializer(Rate.class, ToStringSerializer.instance))
            .disable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
            .disable(DateTimeFeature.WRITE_DATES_AS_TIMESTAMPS)
            .enable(EnumFeature.WRITE_ENUMS_TO_LOWERCASE)
            // A compiled object with nothing to show renders as {} rather than failing the request.
            .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
            .build();

    private PolicyJson() {}

    /** {@code value} as compact JSON. */
    static String write(Object value) {
        return MAPPER.writeValueAsString(value);
    }

    /** {@code 30s}, {@code 5m}, {@code 12h}, {@code 250ms}: SPEC §3's units; ISO-8601 below a millisecond. */
    static String duration(Duration duration) {
        if (duration.getNano() % 1_000_000 != 0 || duration.isNegative()) {
            return duration.toString();
        }
        final long millis = duration.toMillis();
        if (millis != 0 && millis % 3_600_000 == 0) {
            return millis / 3_600_000 + "h";
        }
        if (millis != 0 && millis % 60_000 == 0) {
            return millis / 60_000 + "m";
        }
        if (millis % 1_000 == 0) {
            return millis / 1_000 + "s";
        }
        return millis + "ms";
    }

    private static final class SecretSerializer extends StdSerializer<Secret> {
        SecretSerializer() {
            super(Secret.class);
        }

        @Override
        public void serialize(Secret value, JsonGenerator generator, SerializationContext context) {
            // Never value(): not even its length or emptiness is shown.
            generator.writeString("<redacted>");
        }
    }

    private static final class DurationSerializer extends StdSerializer<Duration> {
        DurationSerializer() {
            super(Duration.class);
        }

        @Override
        public void serialize(Duration value, JsonGenerator generator, SerializationContext context) {
            generator.writeString(duration(value));
        }
    }
}
