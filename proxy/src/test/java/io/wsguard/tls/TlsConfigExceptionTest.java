package io.wsguard.tls;

import static io.wsguard.tls.TlsFixture.pemPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.policy.Secret;
import io.wsguard.policy.TlsPolicy;
import io.wsguard.policy.UpstreamPolicy.UpstreamTlsPolicy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.List;
import java.util.Optional;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every way a {@code tls} section can be wrong names its field, the file, and never a password. */
class TlsConfigExceptionTest {

    @TempDir
    Path dir;

    private TestCerts.Authority ca;
    private TestCerts.Issued good;
    private TestCerts.Issued other;

    @BeforeEach
    void certificates() {
        ca = TestCerts.authority(dir, "ca");
        good = ca.issue(dir, "good", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        other = ca.issue(dir, "other", List.of("localhost"), KeyType.RSA, KeyFormat.PKCS8);
    }

    @Test
    void missingCertificateFile() {
        final Path missing = dir.resolve("nope.crt");
        assertFails(pair(missing, good.privateKey()), "certificates[0].certificate")
                .hasMessageContaining(missing.toString())
                .hasMessageContaining("does not exist");
    }

    @Test
    void certificateFileThatIsNotPem() throws Exception {
        final Path garbage = Files.write(dir.resolve("garbage.crt"), new byte[] {0x30, (byte) 0x82, 0x01, 0x0a, 0x02});
        assertFails(pair(garbage, good.privateKey()), "certificates[0].certificate")
                .hasMessageContaining(garbage.toString())
                .hasMessageContaining("BEGIN CERTIFICATE");
    }

    @Test
    void keyFileThatHoldsACertificate() {
        assertFails(pair(good.certificate(), good.certificate()), "certificates[0].privateKey")
                .hasMessageContaining("is a certificate")
                .hasMessageContaining("PKCS#8");
    }

    @Test
    void keyFileWithoutAKey() throws Exception {
        final Path empty = Files.writeString(dir.resolve("empty.key"), "nothing here\n");
        assertFails(pair(good.certificate(), empty), "certificates[0].privateKey")
                .hasMessageContaining(empty.toString())
                .hasMessageContaining("holds no private key");
    }

    @Test
    void keyOfAnotherCertificateNamesTheIndexOfThePair() {
        final TestCerts.Issued third = ca.issue(dir, "third", List.of("b.test"), KeyType.EC, KeyFormat.SEC1);
        final TlsPolicy policy = new TlsPolicy(
                List.of(
                        new TlsPolicy.KeyPairPolicy(good.certificate(), good.privateKey()),
                        new TlsPolicy.KeyPairPolicy(third.certificate(), good.privateKey())),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty());
        assertFails(policy, "certificates[1].privateKey")
                .hasMessageContaining(good.privateKey().toString())
                .hasMessageContaining(third.certificate().toString())
                .hasMessageContaining("expected: the private key of that certificate");
    }

    @Test
    void keyOfAnotherType() {
        assertFails(pair(good.certificate(), other.privateKey()), "certificates[0].privateKey")
                .hasMessageContaining("(RSA) is not the key");
    }

    @Test
    void wrongKeyStorePasswordIsNeverQuoted() throws Exception {
        final Path p12 = dir.resolve("server.p12");
        TestCerts.writePkcs12(p12, "right-password".toCharArray(), List.of(good));
        assertFails(keyStore(p12, "wrong-password"), "keyStorePassword")
                .hasMessageContaining(p12.toString())
                .hasMessageNotContaining("wrong-password")
                .hasMessageNotContaining("right-password");
    }

    @Test
    void keyStoreWithoutPassword() throws Exception {
        final Path p12 = dir.resolve("server.p12");
        TestCerts.writePkcs12(p12, "pw".toCharArray(), List.of(good));
        final TlsPolicy policy = new TlsPolicy(
                List.of(),
                Optional.of(p12),
                Optional.empty(),
                List.of("TLSv1.3"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty());
        assertFails(policy, "keyStorePassword").hasMessageContaining("missing");
    }

    @Test
    void keyStoreWithoutKeyEntry() throws Exception {
        final Path p12 = dir.resolve("trust-only.p12");
        final KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setCertificateEntry("ca", ca.certificate());
        try (OutputStream out = Files.newOutputStream(p12)) {
            store.store(out, "pw".toCharArray());
        }
        assertFails(keyStore(p12, "pw"), "keyStore").hasMessageContaining("holds no private key");
    }

    @Test
    void keyStoreThatIsAPemFile() {
        assertFails(keyStore(good.certificate(), "pw"), "keyStore").hasMessageContaining("is not a PKCS#12 key store");
    }

    @Test
    void missingKeyStore() {
        assertFails(keyStore(dir.resolve("nope.p12"), "pw"), "keyStore").hasMessageContaining("does not exist");
    }

    @Test
    void noKeyMaterialAtAll() {
        assertFails(
                        new TlsPolicy(
                                List.of(),
                                Optional.empty(),
                                Optional.empty(),
                                List.of("TLSv1.3"),
                                TlsPolicy.ClientAuth.NONE,
                                Optional.empty()),
                        "certificate")
                .hasMessageContaining("expected: certificate + privateKey, or keyStore");
    }

    @Test
    void clientAuthWithoutClientCas() {
        assertFails(
                        new TlsPolicy(
                                pemPolicy(List.of(good)).certificates(),
                                Optional.empty(),
                                Optional.empty(),
                                List.of("TLSv1.3"),
                                TlsPolicy.ClientAuth.REQUIRED,
                                Optional.empty()),
                        "clientCAs")
                .hasMessageContaining("when clientAuth is required");
    }

    @Test
    void clientCasThatAreNotCertificates() {
        assertFails(
                        new TlsPolicy(
                                pemPolicy(List.of(good)).certificates(),
                                Optional.empty(),
                                Optional.empty(),
                                List.of("TLSv1.3"),
                                TlsPolicy.ClientAuth.OPTIONAL,
                                Optional.of(good.privateKey())),
                        "clientCAs")
                .hasMessageContaining(good.privateKey().toString())
                .hasMessageContaining("holds no certificate");
    }

    @Test
    void oldProtocolsAreRefused() {
        for (List<String> protocols :
                List.of(List.of("TLSv1.3", "TLSv1.1"), List.of("TLSv1"), List.of("SSLv3"), List.<String>of())) {
            assertFails(
                            new TlsPolicy(
                                    pemPolicy(List.of(good)).certificates(),
                                    Optional.empty(),
                                    Optional.empty(),
                                    protocols,
                                    TlsPolicy.ClientAuth.NONE,
                                    Optional.empty()),
                            "protocols")
                    .hasMessageContaining("expected: TLSv1.3 and/or TLSv1.2");
        }
    }

    @Test
    void upstreamTrustedCasThatDoNotExist() {
        final Path missing = dir.resolve("upstream-ca.pem");
        assertThatThrownBy(() -> UpstreamTls.create(Optional.of(new UpstreamTlsPolicy(Optional.of(missing), true))))
                .isInstanceOfSatisfying(
                        TlsConfigException.class, e -> assertThat(e.field()).isEqualTo("trustedCAs"))
                .hasMessageContaining(missing.toString());
    }

    @Test
    void messagesAreOneLine() {
        assertFails(pair(good.certificate(), other.privateKey()), "certificates[0].privateKey")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"))
                .satisfies(e -> assertThat(e.toString()).startsWith("certificates[0].privateKey: "));
    }

    private TlsPolicy pair(Path certificate, Path key) {
        return new TlsPolicy(
                List.of(new TlsPolicy.KeyPairPolicy(certificate, key)),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3", "TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty());
    }

    private static TlsPolicy keyStore(Path file, String password) {
        return new TlsPolicy(
                List.of(),
                Optional.of(file),
                Optional.of(new Secret(password)),
                List.of("TLSv1.3"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty());
    }

    private static AbstractThrowableAssert<?, ? extends Throwable> assertFails(TlsPolicy policy, String field) {
        return assertThatThrownBy(() -> ServerTls.create(policy))
                .isInstanceOfSatisfying(
                        TlsConfigException.class, e -> assertThat(e.field()).isEqualTo(field));
    }
}
