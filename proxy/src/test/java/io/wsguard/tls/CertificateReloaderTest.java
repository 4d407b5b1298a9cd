package io.wsguard.tls;

import static io.wsguard.tls.TlsFixture.client;
import static io.wsguard.tls.TlsFixture.get;
import static io.wsguard.tls.TlsFixture.handshake;
import static io.wsguard.tls.TlsFixture.pemPolicy;
import static io.wsguard.tls.TlsFixture.port;
import static io.wsguard.tls.TlsFixture.serial;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.demo.DevCerts;
import io.wsguard.policy.TlsPolicy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.SSLSocket;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class CertificateReloaderTest {

    @TempDir
    Path dir;

    @TempDir
    Path staging;

    private TestCerts.Authority ca;
    private TestCerts.Issued first;
    private Server server;
    private CertificateReloader reloader;
    private final List<String> failures = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        ca = TestCerts.authority(dir, "ca");
        first = ca.issue(dir, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final TlsPolicy policy = pemPolicy(List.of(first));
        final SslContextFactory.Server ssl = ServerTls.create(policy);
        reloader = new CertificateReloader(policy, ssl, Duration.ofMillis(50), failures::add);
        server = TlsFixture.start(ssl);
        server.addBean(reloader);
        reloader.start();
    }

    @AfterEach
    void stop() throws Exception {
        server.stop();
    }

    @Test
    void newHandshakesGetTheNewCertificateWhileOpenConnectionsStay() throws Exception {
        try (SSLSocket before = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(get(before)).isEqualTo("200 ok");

            final TestCerts.Issued renewed =
                    ca.issue(staging, "server", List.of("localhost"), KeyType.RSA, KeyFormat.PKCS1);
            replace(renewed.privateKey(), first.privateKey());
            replace(renewed.certificate(), first.certificate());

            await().atMost(Duration.ofSeconds(10)).until(() -> reloader.reloads() == 1);
            assertThat(servedSerial()).isEqualTo(renewed.x509().getSerialNumber());

            // The connection made before the reload still works, with the certificate it started with.
            assertThat(get(before)).isEqualTo("200 ok");
            assertThat(serial(before)).isEqualTo(first.x509().getSerialNumber());
        }
    }

    @Test
    void certificateWrittenBeforeItsKeyKeepsTheOldMaterialUntilTheKeyArrives() throws Exception {
        final TestCerts.Issued renewed = ca.issue(staging, "server", List.of("localhost"), KeyType.EC, KeyFormat.SEC1);

        replace(renewed.certificate(), first.certificate());
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.failures() == 1);
        assertThat(failures)
                .singleElement()
                .asString()
                .startsWith("certificates[0].privateKey: ")
                .contains(first.privateKey().toString());
        assertThat(servedSerial()).isEqualTo(first.x509().getSerialNumber());

        // Retried while unchanged, but reported once: one failure, one WARN, however long the state lasts.
        Thread.sleep(300);
        assertThat(reloader.failures()).isEqualTo(1);

        replace(renewed.privateKey(), first.privateKey());
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.reloads() == 1);
        assertThat(servedSerial()).isEqualTo(renewed.x509().getSerialNumber());
    }

    @Test
    void halfWrittenCertificateDoesNotTakeTheListenerDown() throws Exception {
        final TestCerts.Issued renewed = ca.issue(staging, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final String text = Files.readString(renewed.certificate());

        Files.writeString(first.certificate(), text.substring(0, text.length() / 2));
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.failures() == 1);
        assertThat(servedSerial()).isEqualTo(first.x509().getSerialNumber());

        Files.writeString(first.certificate(), text);
        replace(renewed.privateKey(), first.privateKey());
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.reloads() == 1);
        assertThat(servedSerial()).isEqualTo(renewed.x509().getSerialNumber());
    }

    @Test
    void deletedFileKeepsTheOldMaterial() throws Exception {
        Files.delete(first.privateKey());
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.failures() == 1);
        assertThat(failures).singleElement().asString().contains("does not exist");
        assertThat(servedSerial()).isEqualTo(first.x509().getSerialNumber());
        assertThat(reloader.reloads()).isZero();
    }

    @Test
    void chainCaughtMidWriteKeepsTheOldChainUntilTheWriteCompletes() throws Exception {
        DevCerts.writeCertificates(first.certificate(), List.of(first.x509(), ca.certificate()));
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.reloads() == 1);
        assertThat(servedChain())
                .containsExactly(
                        first.x509().getSerialNumber(), ca.certificate().getSerialNumber());

        try (SSLSocket before = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(get(before)).isEqualTo("200 ok");
            final TestCerts.Issued renewed =
                    ca.issue(staging, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);

            // The renewal writes the new key first: it does not match the certificate still in place.
            replace(renewed.privateKey(), first.privateKey());
            await().atMost(Duration.ofSeconds(10)).until(() -> reloader.failures() == 1);
            assertThat(failures.get(0)).contains("is not the key of the first certificate");
            assertThat(servedChain())
                    .containsExactly(
                            first.x509().getSerialNumber(), ca.certificate().getSerialNumber());

            // Then the chain, caught after the leaf, inside the BEGIN line of the CA's block. Read as it
            // stands, it is a whole leaf that matches the new key: the leaf would be served alone.
            final String leaf = Files.readString(renewed.certificate());
            Files.writeString(first.certificate(), leaf + "-----BEGIN CERTIF");
            await().atMost(Duration.ofSeconds(10)).until(() -> reloader.failures() == 2);
            assertThat(failures.get(1))
                    .startsWith("certificates[0].certificate: ")
                    .contains("ends inside a PEM block");
            Thread.sleep(300); // a few polls, each of them retrying the same files
            assertThat(reloader.reloads()).isEqualTo(1);
            assertThat(servedChain())
                    .containsExactly(
                            first.x509().getSerialNumber(), ca.certificate().getSerialNumber());
            assertThat(get(before)).isEqualTo("200 ok");

            DevCerts.writeCertificates(first.certificate(), List.of(renewed.x509(), ca.certificate()));
            await().atMost(Duration.ofSeconds(10)).until(() -> reloader.reloads() == 2);
            assertThat(servedChain())
                    .containsExactly(
                            renewed.x509().getSerialNumber(), ca.certificate().getSerialNumber());
            assertThat(reloader.failures()).isEqualTo(2);

            // The connection opened before any of it is still up, on the certificate it started with.
            assertThat(get(before)).isEqualTo("200 ok");
            assertThat(serial(before)).isEqualTo(first.x509().getSerialNumber());
        }
    }

    @Test
    void chainWithACertificateThatDidNotIssueTheOneBeforeItKeepsTheOldChain() throws Exception {
        final TestCerts.Authority stranger = TestCerts.authority(staging, "stranger");
        final TestCerts.Issued renewed = ca.issue(staging, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);

        DevCerts.writeCertificates(first.certificate(), List.of(renewed.x509(), stranger.certificate()));
        replace(renewed.privateKey(), first.privateKey());
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.failures() >= 1);
        assertThat(failures.get(failures.size() - 1))
                .startsWith("certificates[0].certificate: ")
                .contains("certificate 2 in")
                .contains("did not issue certificate 1");
        assertThat(servedChain()).containsExactly(first.x509().getSerialNumber());

        DevCerts.writeCertificates(first.certificate(), List.of(renewed.x509(), ca.certificate()));
        await().atMost(Duration.ofSeconds(10)).until(() -> reloader.reloads() == 1);
        assertThat(servedChain())
                .containsExactly(
                        renewed.x509().getSerialNumber(), ca.certificate().getSerialNumber());
    }

    /** The serial numbers of the chain a new client is sent, leaf first. */
    private List<BigInteger> servedChain() throws Exception {
        try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(get(socket)).isEqualTo("200 ok");
            return Arrays.stream(socket.getSession().getPeerCertificates())
                    .map(cert -> ((X509Certificate) cert).getSerialNumber())
                    .toList();
        }
    }

    private BigInteger servedSerial() throws Exception {
        // A fresh client context each time: a resumed session would show the old certificate.
        try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(get(socket)).isEqualTo("200 ok");
            return serial(socket);
        }
    }

    private static void replace(Path from, Path to) throws Exception {
        Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
}
