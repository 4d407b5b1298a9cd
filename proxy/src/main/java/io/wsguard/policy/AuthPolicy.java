package io.wsguard.policy;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code routes[].auth}: {@code none}, written out so that no route is open by accident, or a map with
 * {@code jwt}, {@code clientCertificate} or both.
 *
 * @param jwt empty for {@code auth: none}
 * @param clientCertificate defaults to {@code none}; {@code required}: a handshake without a verified
 *     client certificate (on a listener with {@code clientAuth: optional}) is refused with 403
 */
public record AuthPolicy(Optional<JwtPolicy> jwt, ClientCertificate clientCertificate) {

    public static final AuthPolicy NONE = new AuthPolicy(Optional.empty(), ClientCertificate.NONE);

    /** {@code auth.clientCertificate}. */
    public enum ClientCertificate {
        NONE,
        REQUIRED
    }

    /**
     * {@code auth.jwt}. Exactly one key source is given: {@code jwksUri}, {@code jwksFile},
     * {@code publicKey} or {@code secret}.
     *
     * @param algorithms required; {@code none} is never accepted
     * @param clockSkew defaults to 30s
     * @param tokenSources defaults to {@code [header]}; {@code header}, {@code subprotocol},
     *     {@code query:NAME}, {@code cookie:NAME}
     * @param require claim name to required value (equals, or contained in an array or a
     *     space-separated string)
     * @param onExpiry defaults to {@code close}
     * @param allowNoExpiry defaults to false: a token without {@code exp} is refused, since it
     *     would be good forever and its connection would live until {@code maxLifetime}
     */
    public record JwtPolicy(
            Optional<String> issuer,
            List<String> audience,
            List<String> algorithms,
            Optional<URI> jwksUri,
            Optional<Path> jwksFile,
            Optional<Path> publicKey,
            Optional<Secret> secret,
            Duration clockSkew,
            List<String> tokenSources,
            Map<String, String> require,
            OnExpiry onExpiry,
            boolean allowNoExpiry) {

        public JwtPolicy {
            audience = List.copyOf(audience);
            algorithms = List.copyOf(algorithms);
            tokenSources = List.copyOf(tokenSources);
            require = Map.copyOf(require);
        }
    }

    /** {@code auth.jwt.onExpiry}. */
    public enum OnExpiry {
        CLOSE,
        IGNORE
    }
}
