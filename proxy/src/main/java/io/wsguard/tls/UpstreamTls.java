package io.wsguard.tls;

import io.wsguard.policy.UpstreamPolicy.UpstreamTlsPolicy;
import java.util.Optional;
import org.eclipse.jetty.util.ssl.SslContextFactory;

/**
 * The TLS client side of {@code wss://} upstream connections, from {@code routes[].upstream.tls}.
 *
 * <p>The proxy trusts the {@code trustedCAs} bundle (every certificate in it), or the JVM's default
 * trust store when the policy names none, and checks the upstream's host name against its
 * certificate (RFC 6125, the {@code HTTPS} rules) unless {@code verifyHostname: false}. It speaks
 * TLSv1.3 and TLSv1.2 only.
 */
public final class UpstreamTls {

    private UpstreamTls() {}

    /**
     * A configured, not yet started client factory; absent policy means JVM trust and host-name
     * verification on.
     *
     * @throws TlsConfigException with field {@code trustedCAs} if the bundle cannot be used
     */
    public static SslContextFactory.Client create(Optional<UpstreamTlsPolicy> policy) {
        final SslContextFactory.Client ssl = new SslContextFactory.Client();
        ssl.setIncludeProtocols("TLSv1.3", "TLSv1.2");
        ssl.setTrustAll(false);
        ssl.setEndpointIdentificationAlgorithm("HTTPS");
        ssl.setRenegotiationAllowed(false);
        if (policy.isPresent()) {
            policy.get().trustedCAs().ifPresent(file -> ssl.setTrustStore(KeyMaterial.trustStore(file, "trustedCAs")));
            if (!policy.get().verifyHostname()) {
                // The chain is still verified; only the name check is off (e.g. upstreams addressed by a
                // pod IP their certificate does not list).
                ssl.setEndpointIdentificationAlgorithm(null);
            }
        }
        return ssl;
    }
}
