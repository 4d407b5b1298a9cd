package io.wsguard.tls;

import static io.wsguard.tls.TlsFixture.pemPolicy;
import static io.wsguard.tls.TlsFixture.port;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.demo.DevCerts;
import io.wsguard.policy.UpstreamPolicy.UpstreamTlsPolicy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLHandshakeException;
import org.eclipse.jetty.client.ContentResponse;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.transport.HttpClientTransportOverHTTP;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The proxy's side of a {@code wss://} upstream, exercised with Jetty's HttpClient against a real TLS server. */
@Timeout(60)
class UpstreamTlsTest {

    @TempDir
    Path dir;

    private TestCerts.Authority ca;
    private Server upstream;

    @BeforeEach
    void makeCa() {
        ca = TestCerts.authority(dir, "upstream-ca");
    }

    @AfterEach
    void stop() throws Exception {
        if (upstream != null) {
            upstream.stop();
        }
    }

    @Test
    void trustsTheGivenCaAndChecksTheHostName() throws Exception {
        startUpstream("127.0.0.1");

        assertThat(get(new UpstreamTlsPolicy(Optional.of(ca.certificatePath()), true))
                        .getContentAsString())
                .isEqualTo("ok");
    }

    @Test
    void trustsEveryCaOfABundle() throws Exception {
        final TestCerts.Authority unrelated = TestCerts.authority(dir, "unrelated-ca");
        final Path bundle = dir.resolve("bundle.pem");
        DevCerts.writeCertificates(bundle, List.of(unrelated.certificate(), ca.certificate()));
        startUpstream("127.0.0.1");

        assertThat(get(new UpstreamTlsPolicy(Optional.of(bundle), true)).getStatus())
                .isEqualTo(200);
    }

    @Test
    void refusesACertificateForAnotherNameUnlessVerifyHostnameIsOff() throws Exception {
        startUpstream("other.test");

        assertThatThrownBy(() -> get(new UpstreamTlsPolicy(Optional.of(ca.certificatePath()), true)))
                .hasRootCauseInstanceOf(java.security.cert.CertificateException.class)
                .rootCause()
                .hasMessageContaining("127.0.0.1");
        assertThat(get(new UpstreamTlsPolicy(Optional.of(ca.certificatePath()), false))
                        .getStatus())
                .isEqualTo(200);
    }

    @Test
    void refusesAnUntrustedCaEvenWithoutHostNameVerification() throws Exception {
        final TestCerts.Authority unrelated = TestCerts.authority(dir, "unrelated-ca");
        startUpstream("127.0.0.1");

        assertThatThrownBy(() -> get(new UpstreamTlsPolicy(Optional.of(unrelated.certificatePath()), false)))
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(SSLHandshakeException.class);
    }

    @Test
    void withoutPolicyTrustsOnlyTheJvmDefaultsAndVerifiesHostNames() throws Exception {
        startUpstream("127.0.0.1");
        final SslContextFactory.Client ssl = UpstreamTls.create(Optional.empty());

        assertThat(ssl.getEndpointIdentificationAlgorithm()).isEqualTo("HTTPS");
        assertThat(ssl.getIncludeProtocols()).containsExactly("TLSv1.3", "TLSv1.2");
        assertThatThrownBy(() -> get(ssl))
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(SSLHandshakeException.class);
    }

    private void startUpstream(String san) throws Exception {
        final TestCerts.Issued cert = ca.issue(dir, "upstream", List.of(san), KeyType.EC, KeyFormat.PKCS8);
        upstream = TlsFixture.startWithoutSniHostCheck(ServerTls.create(pemPolicy(List.of(cert))));
    }

    private ContentResponse get(UpstreamTlsPolicy policy) throws Exception {
        return get(UpstreamTls.create(Optional.of(policy)));
    }

    private ContentResponse get(SslContextFactory.Client ssl) throws Exception {
        final ClientConnector connector = new ClientConnector();
        connector.setSslContextFactory(ssl);
        final HttpClient client = new HttpClient(new HttpClientTransportOverHTTP(connector));
        client.start();
        try {
            return client.newRequest("https://127.0.0.1:" + port(upstream) + "/")
                    .timeout(10, TimeUnit.SECONDS)
                    .send();
        } finally {
            client.stop();
        }
    }
}
