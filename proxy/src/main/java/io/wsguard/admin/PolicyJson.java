package io.wsguard.admin;

import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.Rate;
import io.wsguard.policy.RateLimitStorePolicy;
import io.wsguard.policy.Redaction;
import io.wsguard.policy.Secret;
import io.wsguard.policy.UpstreamPolicy;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import tools.jackson.core.JsonGenerator;
import tools.jackson.databind.MapperFeature;
import tools.jackson.databind.SerializationContext;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.annotation.JsonSerialize;
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
 *
 * <p>Some secrets are plain text in the policy model, because the proxy needs them as written:
 * the password in a URI's userinfo (every {@link URI}, {@code rateLimitStore.redis.uri},
 * {@code auth.jwt.issuer}) and {@code upstream.headers.set} values, which hold API keys after
 * {@code ${ENV}} substitution. Those are redacted here, by field, with the same marker.
 */
final class PolicyJson {

    /** What a secret is written as; its length and emptiness stay hidden too. */
    static final String REDACTED = Redaction.REDACTED;

    /**
     * A header value made only of claim references, resolved per connection from the verified token.
     * The claim name is EnvSubstitution's and UpstreamHeaders' {@code jwt.[A-Za-z0-9_:.-]+}.
     */
    private static final Pattern CLAIM_TEMPLATES_ONLY = Pattern.compile("(?:\\$\\{jwt\\.[A-Za-z0-9_:.-]+})+");

    private static final JsonMapper MAPPER = mapper(false);
    /**
     * The same rendering for a digest ({@link RoutesHash}): keys sorted, and each file named by a
     * path written as the SHA-256 of its content, so that equal policies in different directories
     * (each resolves its relative paths against its own) give equal text.
     */
    private static final JsonMapper CANONICAL = mapper(true);

    private PolicyJson() {}

    private static JsonMapper mapper(boolean canonical) {
        final SimpleModule module = new SimpleModule("wsguard-policy")
                .addSerializer(Secret.class, new SecretSerializer())
                .addSerializer(URI.class, new UriSerializer())
                .addSerializer(Duration.class, new DurationSerializer())
                .addSerializer(Rate.class, ToStringSerializer.instance);
        if (canonical) {
            module.addSerializer(Path.class, new FileDigestSerializer());
        } else {
            module.addSerializer(Path.class, ToStringSerializer.instance);
        }
        return JsonMapper.builder()
                .addModule(module)
                .addMixIn(RateLimitStorePolicy.RedisPolicy.class, RedisPolicyRedaction.class)
                .addMixIn(UpstreamPolicy.HeadersPolicy.class, HeadersPolicyRedaction.class)
                .addMixIn(AuthPolicy.JwtPolicy.class, JwtPolicyRedaction.class)
                // Records keep their declaration order for people; a digest needs one order whatever
                // the declaration (a record whose components move must still hash the same).
                .configure(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY, canonical)
                .configure(MapperFeature.SORT_CREATOR_PROPERTIES_FIRST, !canonical)
                .configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, canonical)
                .disable(DateTimeFeature.WRITE_DATES_AS_TIMESTAMPS)
                .enable(EnumFeature.WRITE_ENUMS_TO_LOWERCASE)
                // A compiled object with nothing to show renders as {} rather than failing the request.
                .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
                .build();
    }

    /** {@code value} as compact JSON. */
    static String write(Object value) {
        return MAPPER.writeValueAsString(value);
    }

    /**
     * {@code value} as canonical JSON: keys sorted, secrets redacted as in {@link #write}, every
     * file path replaced by {@code sha256:HEX} of the file's bytes (read now).
     */
    static byte[] canonical(Object value) {
        return CANONICAL.writeValueAsBytes(value);
    }

    /** {@code 30s}, {@code 5m}, {@code 12h}, {@code 250ms}: docs/policy.md's units; ISO-8601 below a millisecond. */
    // getNano() is the part below a second, which is all that is asked of it here.
    @SuppressWarnings("JavaDurationGetSecondsGetNano")
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

    /**
     * An {@code upstream.headers.set} value as shown: claim references only ({@code ${jwt.sub}}) as
     * written, anything else redacted, since after substitution it may be an API key, and a literal
     * may be a key pasted into the file.
     */
    static String headerValue(String value) {
        return CLAIM_TEMPLATES_ONLY.matcher(value).matches() ? value : REDACTED;
    }

    // Mix-ins attach the redacting serializers to the policy records' plain-text fields without
    // changing the records the proxy runs on.

    @SuppressWarnings("UnusedMethod") // Jackson reads the mix-in's methods: nothing calls them
    private abstract static class RedisPolicyRedaction {
        @JsonSerialize(using = UriTextSerializer.class)
        abstract String uri();
    }

    @SuppressWarnings("UnusedMethod") // Jackson reads the mix-in's methods: nothing calls them
    private abstract static class HeadersPolicyRedaction {
        @JsonSerialize(contentUsing = HeaderValueSerializer.class)
        abstract Map<String, String> set();
    }

    @SuppressWarnings("UnusedMethod") // Jackson reads the mix-in's methods: nothing calls them
    private abstract static class JwtPolicyRedaction {
        @JsonSerialize(contentUsing = UriTextSerializer.class)
        abstract Optional<String> issuer();
    }

    private static final class SecretSerializer extends StdSerializer<Secret> {
        SecretSerializer() {
            super(Secret.class);
        }

        @Override
        public void serialize(Secret value, JsonGenerator generator, SerializationContext context) {
            // Never value(): not even its length or emptiness is shown.
            generator.writeString(REDACTED);
        }
    }

    private static final class UriSerializer extends StdSerializer<URI> {
        UriSerializer() {
            super(URI.class);
        }

        @Override
        public void serialize(URI value, JsonGenerator generator, SerializationContext context) {
            generator.writeString(Redaction.withoutQueryValues(Redaction.withoutPassword(value.toString())));
        }
    }

    private static final class UriTextSerializer extends StdSerializer<String> {
        UriTextSerializer() {
            super(String.class);
        }

        @Override
        public void serialize(String value, JsonGenerator generator, SerializationContext context) {
            generator.writeString(Redaction.withoutPassword(value));
        }
    }

    private static final class HeaderValueSerializer extends StdSerializer<String> {
        HeaderValueSerializer() {
            super(String.class);
        }

        @Override
        public void serialize(String value, JsonGenerator generator, SerializationContext context) {
            generator.writeString(headerValue(value));
        }
    }

    private static final class FileDigestSerializer extends StdSerializer<Path> {
        FileDigestSerializer() {
            super(Path.class);
        }

        @Override
        public void serialize(Path value, JsonGenerator generator, SerializationContext context) {
            try {
                generator.writeString("sha256:" + RoutesHash.sha256Hex(Files.readAllBytes(value)));
            } catch (IOException e) {
                // Compiling the policy read it a moment ago; gone since: the hash says so, without
                // the path (which differs from instance to instance).
                generator.writeString("unreadable: " + e.getClass().getSimpleName());
            }
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
