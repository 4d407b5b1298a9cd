package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.AuditLines;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.SchemaChecked;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import io.wsguard.testing.UpstreamServer;
import java.math.BigInteger;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Routes tied to listeners ({@code match.listeners}), over real TLS with real client certificates:
 * a route of the mutual-TLS listener does not exist on the plain one (404, or the route the plain
 * listener has for that path), {@code auth.clientCertificate: required} refuses clients without a
 * certificate on a listener where it is optional, and the verified certificate reaches the upstream
 * only through {@code ${tls.subject}} and {@code ${tls.fingerprint}}.
 */
@Timeout(60)
class ListenerRoutesTest {

    private static final int MTLS = 0;
    private static final int OPTIONAL = 1;
    private static final int PLAIN = 2;

    @TempDir
    static Path dir;

    private static UpstreamServer upstream;
    private static ProxyServer proxy;
    private static TestCerts.Authority serverCa;
    private static TestCerts.Issued alice;
    private static TestCerts.Authority clientCa;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        serverCa = TestCerts.authority(dir, "ca");
        final TestCerts.Issued server =
                serverCa.issue(dir, "server", List.of("localhost", "127.0.0.1"), KeyType.EC, KeyFormat.PKCS8);
        clientCa = TestCerts.authority(dir, "clients-ca");
        alice = clientCa.issue(dir, "alice", List.of(), KeyType.EC, KeyFormat.PKCS8);
        final String tls = "certificate: " + server.certificate() + ", privateKey: " + server.privateKey()
                + ", clientCAs: " + clientCa.certificatePath();
        final Path policy = dir.resolve("policy.yaml");
        Files.writeString(
                policy, """
                version: 1
                listeners:
                  - { name: mtls, host: 127.0.0.1, port: 0, tls: { %1$s, clientAuth: required } }
                  - { name: opt, host: 127.0.0.1, port: 0, tls: { %1$s, clientAuth: optional } }
                  - { name: plain, host: 127.0.0.1, port: 0 }
                audit: { sink: file, path: %2$s }
                routes:
                  - name: admin
                    match: { path: /admin, listeners: [mtls] }
                    upstream:
                      targets: [%3$s/admin-target]
                      headers: { set: { X-Client-Subject: "${tls.subject}", X-Client-Fingerprint: \
                "${tls.fingerprint}" } }
                    auth: none
                  - name: admin-lax
                    match: { path: /admin, listeners: [plain] }
                    upstream: { targets: [%3$s/lax-target] }
                    auth: none
                  - name: secret
                    match: { path: /secret, listeners: [mtls] }
                    upstream: { targets: [%3$s/secret-target] }
                    auth: none
                  - name: cert-only
                    match: { path: /cert-only, listeners: [opt] }
                    upstream:
                      targets: [%3$s/cert-target]
                      headers: { set: { X-Client-Subject: "${tls.subject}" } }
                    auth: { clientCertificate: required }
                """.formatted(tls, dir.resolve("audit.jsonl"), upstream.uri("")), StandardCharsets.UTF_8);
        proxy = new ProxyServer(SchemaChecked.load(policy, Map.of()));
        proxy.start();
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.stop();
        upstream.close();
    }

    @Test
    void aRouteOfTheMtlsListenerDoesNotExistOnThePlainOne() throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused = RawUpgrade.send(proxy.port(PLAIN), "/secret", Map.of())) {
            assertThat(refused.status()).isEqualTo(404);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", "no_route")
                .containsEntry("status", 404)
                .containsEntry("route", null)
                .containsEntry("detail", "no route for this host and path on listener 'plain'"));

        try (RawUpgrade upgraded = RawUpgrade.send(tls(MTLS, alice), "/secret", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/secret-target");
    }

    @Test
    void thePlainListenerFallsThroughToItsOwnRouteForThePathAndTheMtlsOnePassesTheCertificateOn() throws Exception {
        try (RawUpgrade upgraded =
                RawUpgrade.send(proxy.port(PLAIN), "/admin", Map.of("X-Client-Subject", "CN=root"))) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/lax-target");
        assertThat(lastUpgradeHeaders()).doesNotContainKeys("x-client-subject", "x-client-fingerprint");

        // A client's own X-Client-Subject never survives where the route sets it.
        try (RawUpgrade upgraded = RawUpgrade.send(tls(MTLS, alice), "/admin", Map.of("X-Client-Subject", "CN=root"))) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/admin-target");
        final Map<String, List<String>> headers = lastUpgradeHeaders();
        assertThat(headers.get("x-client-subject")).containsExactly("O=wsguard dev,CN=alice");
        assertThat(headers.get("x-client-fingerprint"))
                .containsExactly(HexFormat.of()
                        .formatHex(MessageDigest.getInstance("SHA-256")
                                .digest(alice.x509().getEncoded())));
    }

    @Test
    void aRouteRequiringACertificateRefusesClientsWithoutOneWhereItIsOptional() throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused =
                RawUpgrade.send(tls(OPTIONAL, null), "/cert-only", Map.of("X-Client-Subject", "CN=alice"))) {
            assertThat(refused.status()).isEqualTo(403);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "client_certificate_missing")
                .containsEntry("route", "cert-only")
                .containsEntry("status", 403)
                .containsEntry("detail", "no client certificate in the TLS handshake"));

        try (RawUpgrade upgraded = RawUpgrade.send(tls(OPTIONAL, alice), "/cert-only", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/cert-target");
        assertThat(lastUpgradeHeaders().get("x-client-subject")).containsExactly("O=wsguard dev,CN=alice");
    }

    @Test
    void aSubjectWithControlCharactersCannotSplitOrBreakTheUpstreamHeader() throws Exception {
        final TestCerts.Issued mallory = issue(clientCa, "mallory\r\nX-Injected: 1\u000b\u007fend");
        final String subject = mallory.x509().getSubjectX500Principal().getName(X500Principal.RFC2253);
        assertThat(subject)
                .as("the certificate really carries them")
                .contains("\r\n")
                .contains("\u000b\u007f");

        try (RawUpgrade upgraded = RawUpgrade.send(tls(OPTIONAL, mallory), "/cert-only", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        final Map<String, List<String>> headers = lastUpgradeHeaders();
        assertThat(headers).doesNotContainKey("x-injected");
        assertThat(headers.get("x-client-subject")).containsExactly(subject.replaceAll("[\\x00-\\x1f\\x7f]", " "));
    }

    /** A TLS connection to listener {@code index} that shows {@code certificate} (none if null). */
    private static Socket tls(int index, TestCerts.Issued certificate) throws Exception {
        final KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", serverCa.certificate());
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManagerFactory kmf = null;
        if (certificate != null) {
            final KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("client", certificate.keyPair().getPrivate(), "pw".toCharArray(), new X509Certificate[] {
                certificate.x509()
            });
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, "pw".toCharArray());
        }
        // A context per connection: the JDK would otherwise resume a session, certificate and all.
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        final SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket("127.0.0.1", proxy.port(index));
        socket.setSoTimeout(10_000);
        socket.startHandshake();
        return socket;
    }

    /** A client certificate whose common name is {@code commonName}, whatever it holds. */
    private static TestCerts.Issued issue(TestCerts.Authority ca, String commonName) throws Exception {
        final KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(256);
        final KeyPair keys = generator.generateKeyPair();
        final X500Name subject = new X500NameBuilder(BCStyle.INSTANCE)
                .addRDN(BCStyle.CN, commonName)
                .build();
        final X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                        X500Name.getInstance(
                                ca.certificate().getSubjectX500Principal().getEncoded()),
                        BigInteger.valueOf(System.nanoTime()),
                        Date.from(Instant.now().minusSeconds(60)),
                        Date.from(Instant.now().plus(Duration.ofDays(1))),
                        subject,
                        keys.getPublic())
                .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth));
        final X509Certificate certificate = new JcaX509CertificateConverter()
                .getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withECDSA")
                        .build(ca.keyPair().getPrivate())));
        return new TestCerts.Issued(null, null, certificate, keys);
    }

    private static Map<String, List<String>> lastUpgradeHeaders() {
        return upstream.upgradeHeaders().get(upstream.upgradeHeaders().size() - 1);
    }

    private static List<Map<String, Object>> auditLines() throws Exception {
        proxy.flushAudit();
        return Files.readAllLines(dir.resolve("audit.jsonl")).stream()
                .filter(l -> !l.isBlank())
                .map(AuditLines::parse)
                .toList();
    }
}
