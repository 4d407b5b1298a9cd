package io.wsguard.tls;

import io.wsguard.policy.TlsPolicy;
import java.util.List;
import java.util.Set;
import org.eclipse.jetty.util.ssl.SslContextFactory;

/**
 * Builds the TLS side of a listener from its {@code listeners[].tls} section (docs/policy.md).
 *
 * <p>What the factory gets:
 * <ul>
 *   <li>key material from PEM pairs (PKCS#8, PKCS#1 or SEC1 keys; RSA, EC or Ed25519) and/or a
 *       PKCS#12 key store, all in one in-memory key store with one alias per certificate. With
 *       several, Jetty picks by SNI; without SNI, or for an unknown name, the first pair of the
 *       policy that fits the client's key types is served.</li>
 *   <li>exactly the policy's protocols (only TLSv1.2 and TLSv1.3 are accepted), Jetty's default
 *       cipher exclusions (no MD5/SHA-1 suites, no static RSA, no NULL or anon), and no
 *       renegotiation, which TLS 1.3 removed and TLS 1.2 only needs for attacks.</li>
 *   <li>client certificates per {@code clientAuth}, checked against the {@code clientCAs} bundle.</li>
 * </ul>
 *
 * <p>Everything is read and checked here, so {@code wsguard check} finds a bad file, a key that
 * belongs to another certificate or a wrong password before any listener opens.
 */
public final class ServerTls {

    /** The only protocols wsguard will speak; docs/policy.md: older ones are refused at check time. */
    static final Set<String> ALLOWED_PROTOCOLS = Set.of("TLSv1.3", "TLSv1.2");

    private ServerTls() {}

    /**
     * A configured, not yet started factory for {@code policy}. Keep the policy: a
     * {@link CertificateReloader} needs it to watch the same files.
     *
     * @throws TlsConfigException naming the field at fault if anything cannot be used
     */
    public static SslContextFactory.Server create(TlsPolicy policy) {
        final List<String> protocols = checkProtocols(policy.protocols());
        final KeyMaterial material = KeyMaterial.load(policy);

        final SslContextFactory.Server ssl = new SslContextFactory.Server();
        material.applyTo(ssl);
        ssl.setIncludeProtocols(protocols.toArray(String[]::new));
        ssl.setRenegotiationAllowed(false);
        switch (policy.clientAuth()) {
            case REQUIRED -> ssl.setNeedClientAuth(true);
            case OPTIONAL -> ssl.setWantClientAuth(true);
            default -> {
                ssl.setNeedClientAuth(false);
                ssl.setWantClientAuth(false);
            }
        }
        return ssl;
    }

    static List<String> checkProtocols(List<String> protocols) {
        if (protocols.isEmpty()) {
            throw new TlsConfigException("protocols", "is empty (expected: TLSv1.3 and/or TLSv1.2)");
        }
        for (String protocol : protocols) {
            if (!ALLOWED_PROTOCOLS.contains(protocol)) {
                throw new TlsConfigException(
                        "protocols",
                        "'" + protocol + "' is not allowed (expected: TLSv1.3"
                                + " and/or TLSv1.2; older versions have known attacks and are refused)");
            }
        }
        return protocols;
    }
}
