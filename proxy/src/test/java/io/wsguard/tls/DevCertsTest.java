package io.wsguard.tls;

import static io.wsguard.tls.TlsFixture.client;
import static io.wsguard.tls.TlsFixture.get;
import static io.wsguard.tls.TlsFixture.handshake;
import static io.wsguard.tls.TlsFixture.port;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.demo.DevCerts;
import io.wsguard.demo.DevCerts.DevCertPaths;
import io.wsguard.policy.TlsPolicy;
import io.wsguard.testing.TestCerts;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLSocket;
import org.eclipse.jetty.server.Server;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DevCerts} lives in {@code demo}; it is tested here because what matters is that {@link ServerTls} serves it.
 */
@Timeout(60)
class DevCertsTest {

    @TempDir
    Path dir;

    @Test
    void ensureMakesACaAndAServerCertificateForLocalhost() throws Exception {
        final DevCertPaths paths = DevCerts.ensure(dir.resolve("dev"));
        final X509Certificate ca = Pem.certificates(paths.caCertificate()).get(0);
        final X509Certificate leaf = Pem.certificates(paths.certificate()).get(0);

        leaf.verify(ca.getPublicKey());
        assertThat(leaf.getSubjectAlternativeNames())
                .extracting(san -> (Object) san.get(1))
                .containsExactlyInAnyOrder("localhost", "127.0.0.1", "0:0:0:0:0:0:0:1");
        assertThat(leaf.getPublicKey()).isInstanceOf(ECPublicKey.class);
        assertThat(((ECPublicKey) leaf.getPublicKey())
                        .getParams()
                        .getCurve()
                        .getField()
                        .getFieldSize())
                .isEqualTo(256);
        assertThat(Duration.between(
                        leaf.getNotBefore().toInstant(), leaf.getNotAfter().toInstant()))
                .isEqualTo(Duration.ofDays(825));
        assertThat(Files.readString(paths.privateKey())).startsWith("-----BEGIN PRIVATE KEY-----");
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(paths.privateKey())))
                    .isEqualTo("rw-------");
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(paths.caKey())))
                    .isEqualTo("rw-------");
        }

        final Server server = TlsFixture.start(ServerTls.create(new TlsPolicy(
                List.of(new TlsPolicy.KeyPairPolicy(paths.certificate(), paths.privateKey())),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3", "TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty())));
        try (SSLSocket socket = handshake(client(ca, null), port(server), "localhost")) {
            assertThat(get(socket)).isEqualTo("200 ok");
        } finally {
            server.stop();
        }
    }

    @Test
    void ensureKeepsValidFilesAndReplacesABrokenServerCertificate() throws Exception {
        final DevCertPaths first = DevCerts.ensure(dir);
        final String ca = Files.readString(first.caCertificate());
        final String leaf = Files.readString(first.certificate());

        DevCerts.ensure(dir);
        assertThat(Files.readString(first.caCertificate())).isEqualTo(ca);
        assertThat(Files.readString(first.certificate())).isEqualTo(leaf);

        Files.writeString(first.certificate(), "broken");
        DevCerts.ensure(dir);
        assertThat(Files.readString(first.caCertificate())).as("CA kept").isEqualTo(ca);
        assertThat(Files.readString(first.certificate()))
                .startsWith("-----BEGIN CERTIFICATE-----")
                .isNotEqualTo(leaf);
    }

    @Test
    void issueWritesACaAndALeafInTheAskedForm() throws Exception {
        final DevCertPaths paths =
                TestCerts.issue(dir, "api", List.of("api.test"), TestCerts.KeyType.RSA, TestCerts.KeyFormat.PKCS1);
        assertThat(paths.caCertificate()).hasFileName("api-ca.crt");
        assertThat(Files.readString(paths.privateKey())).startsWith("-----BEGIN RSA PRIVATE KEY-----");
        assertThat(Pem.certificates(paths.certificate()).get(0).getSubjectAlternativeNames())
                .extracting(san -> (Object) san.get(1))
                .containsExactly("api.test");
        assertThatThrownBy(
                        () -> TestCerts.issue(dir, "x", List.of("x"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS1))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
