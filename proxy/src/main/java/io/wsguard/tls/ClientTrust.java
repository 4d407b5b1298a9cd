package io.wsguard.tls;

import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.Optional;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * The TLS client context of a plain-socket client wsguard runs itself (the syslog sink): it trusts
 * the certificates of a PEM bundle, or the JVM's default trust store when there is none. Host-name
 * verification is the socket's to switch on ({@code SSLParameters.setEndpointIdentificationAlgorithm}).
 */
public final class ClientTrust {

    private ClientTrust() {}

    /**
     * An initialised context trusting {@code ca}'s certificates, or the JVM's authorities.
     *
     * @throws TlsConfigException with field {@code ca} if the bundle cannot be used
     */
    public static SSLContext context(Optional<Path> ca) {
        try {
            final TrustManagerFactory trust =
                    TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            // null: the JVM's cacerts, as SSLContext.getDefault() would use.
            trust.init(ca.map(file -> KeyMaterial.trustStore(file, "ca")).orElse((KeyStore) null));
            final SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new TlsConfigException("ca", "cannot build a TLS context: " + e.getMessage(), e);
        }
    }
}
