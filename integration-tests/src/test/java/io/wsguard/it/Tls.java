package io.wsguard.it;

import io.wsguard.demo.DevCerts;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Dev certificates for a TLS listener (from the proxy's own {@link DevCerts}) and a client context trusting their CA.
 */
final class Tls {

    private Tls() {}

    /** Writes a CA and a server certificate for 127.0.0.1/localhost into {@code dir}. */
    static DevCerts.DevCertPaths certs(Path dir) {
        return DevCerts.ensure(dir);
    }

    /** A client context that trusts only the given CA: real verification, hostname included. */
    static SSLContext trusting(Path caCertificate) throws Exception {
        final KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(caCertificate)) {
            trust.setCertificateEntry(
                    "ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        return context;
    }
}
