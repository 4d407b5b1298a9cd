package io.wsguard.policy;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * {@code listeners[].tls}: WSS termination.
 *
 * <p>Key material is either {@code certificate:} + {@code privateKey:} (PEM), which become the first
 * entry of {@link #certificates}, plus any further {@code certificates: [{certificate, privateKey}]}
 * entries (chosen by SNI); or a {@code keyStore} (PKCS#12) with {@code keyStorePassword}, whose every
 * key entry is offered by SNI. Files are watched and reloaded when they change.
 *
 * @param protocols defaults to {@code [TLSv1.3, TLSv1.2]}; anything older is refused at check time
 * @param clientAuth defaults to {@code none}
 * @param clientCAs required when {@code clientAuth} is not {@code none}
 */
public record TlsPolicy(
        List<KeyPairPolicy> certificates,
        Optional<Path> keyStore,
        Optional<Secret> keyStorePassword,
        List<String> protocols,
        ClientAuth clientAuth,
        Optional<Path> clientCAs) {

    public TlsPolicy {
        certificates = List.copyOf(certificates);
        protocols = List.copyOf(protocols);
    }

    /** One PEM certificate chain and its private key (PKCS#8, PKCS#1 or SEC1). */
    public record KeyPairPolicy(Path certificate, Path privateKey) {}

    /** {@code clientAuth}: whether clients must present a certificate signed by {@code clientCAs}. */
    public enum ClientAuth {
        NONE,
        OPTIONAL,
        REQUIRED
    }
}
