package io.wsguard.tls;

import static io.wsguard.tls.TlsFixture.client;
import static io.wsguard.tls.TlsFixture.get;
import static io.wsguard.tls.TlsFixture.handshake;
import static io.wsguard.tls.TlsFixture.pemPolicy;
import static io.wsguard.tls.TlsFixture.port;
import static io.wsguard.tls.TlsFixture.serial;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.policy.Secret;
import io.wsguard.policy.TlsPolicy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.eclipse.jetty.server.Server;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Timeout(60)
class ServerTlsTest {

    @TempDir
    Path dir;

    private TestCerts.Authority ca;
    private Server server;

    @BeforeEach
    void makeCa() {
        ca = TestCerts.authority(dir, "ca");
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.stop();
        }
    }

    @ParameterizedTest(name = "{0} key as {1}")
    @CsvSource({"RSA, PKCS8", "RSA, PKCS1", "EC, PKCS8", "EC, SEC1", "ED25519, PKCS8"})
    void servesPemPairInEveryKeyForm(KeyType type, KeyFormat format) throws Exception {
        final TestCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost", "127.0.0.1"), type, format);
        assertThat(Files.readString(leaf.privateKey()))
                .startsWith(
                        switch (format) {
                            case PKCS8 -> "-----BEGIN PRIVATE KEY-----";
                            case PKCS1 -> "-----BEGIN RSA PRIVATE KEY-----";
                            case SEC1 -> "-----BEGIN EC PRIVATE KEY-----";
                        });
        server = TlsFixture.start(ServerTls.create(pemPolicy(List.of(leaf))));

        try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(serial(socket)).isEqualTo(leaf.x509().getSerialNumber());
            assertThat(get(socket)).isEqualTo("200 ok");
        }
    }

    @Test
    void servesEveryKeyEntryOfPkcs12KeyStoreBySni() throws Exception {
        final TestCerts.Issued a = ca.issue(dir, "a", List.of("a.test"), KeyType.EC, KeyFormat.PKCS8);
        final TestCerts.Issued b = ca.issue(dir, "b", List.of("b.test"), KeyType.RSA, KeyFormat.PKCS8);
        final Path p12 = dir.resolve("server.p12");
        TestCerts.writePkcs12(p12, "s3cret".toCharArray(), List.of(a, b));
        server = TlsFixture.start(ServerTls.create(new TlsPolicy(
                List.of(),
                Optional.of(p12),
                Optional.of(new Secret("s3cret")),
                List.of("TLSv1.3", "TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty())));
        try (SSLSocket toA = handshake(client(ca.certificate(), null), port(server), "a.test");
                SSLSocket toB = handshake(client(ca.certificate(), null), port(server), "b.test")) {
            assertThat(serial(toA)).isEqualTo(a.x509().getSerialNumber());
            assertThat(serial(toB)).isEqualTo(b.x509().getSerialNumber());
            assertThat(get(toB, "b.test")).isEqualTo("200 ok");
        }
    }

    @Test
    void sniPicksTheCertificateForTheNameAndTheFirstPairOtherwise() throws Exception {
        final TestCerts.Issued a = ca.issue(dir, "a", List.of("a.test"), KeyType.EC, KeyFormat.PKCS8);
        final TestCerts.Issued b = ca.issue(dir, "b", List.of("b.test"), KeyType.EC, KeyFormat.PKCS8);
        // b first: the default must follow the policy's order, not the key store's whims.
        server = TlsFixture.start(ServerTls.create(pemPolicy(List.of(b, a))));
        for (int i = 0; i < 3; i++) {
            try (SSLSocket toA = handshake(client(ca.certificate(), null), port(server), "a.test");
                    SSLSocket toB = handshake(client(ca.certificate(), null), port(server), "b.test");
                    SSLSocket noSni = handshake(client(ca.certificate(), null), port(server), null);
                    SSLSocket unknown = handshake(client(ca.certificate(), null), port(server), "c.test")) {
                assertThat(serial(toA)).isEqualTo(a.x509().getSerialNumber());
                assertThat(serial(toB)).isEqualTo(b.x509().getSerialNumber());
                assertThat(serial(noSni)).isEqualTo(b.x509().getSerialNumber());
                assertThat(serial(unknown)).isEqualTo(b.x509().getSerialNumber());
            }
        }
        server.stop();

        server = TlsFixture.start(ServerTls.create(pemPolicy(List.of(a, b))));
        try (SSLSocket noSni = handshake(client(ca.certificate(), null), port(server), null)) {
            assertThat(serial(noSni)).isEqualTo(a.x509().getSerialNumber());
        }
    }

    /**
     * The JDK client will not even offer TLS 1.1 (jdk.tls.disabledAlgorithms), so a client-side
     * refusal would prove nothing about the server. Send a real TLS 1.1 ClientHello by hand.
     */
    @Test
    void refusesTls11ClientHelloWithProtocolVersionAlert() throws Exception {
        final TestCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.RSA, KeyFormat.PKCS8);
        server = TlsFixture.start(ServerTls.create(pemPolicy(List.of(leaf))));

        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port(server))) {
            socket.setSoTimeout(10_000);
            final OutputStream out = socket.getOutputStream();
            out.write(tls11ClientHello());
            out.flush();
            final DataInputStream in = new DataInputStream(socket.getInputStream());
            final byte[] header = new byte[5];
            in.readFully(header);
            assertThat(header[0]).as("record type alert").isEqualTo((byte) 21);
            final byte[] alert = new byte[2];
            in.readFully(alert);
            assertThat(alert).as("fatal protocol_version").containsExactly(2, 70);
        }
    }

    @Test
    void speaksExactlyThePolicysProtocols() throws Exception {
        final TestCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final TlsPolicy only12 = new TlsPolicy(
                pemPolicy(List.of(leaf)).certificates(),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty());
        server = TlsFixture.start(ServerTls.create(only12));
        final SSLContext context = client(ca.certificate(), null);

        assertThatThrownBy(() ->
                        handshake(context, port(server), "localhost", "TLSv1.3").close())
                .isInstanceOf(IOException.class);
        try (SSLSocket socket = handshake(context, port(server), "localhost")) {
            assertThat(socket.getSession().getProtocol()).isEqualTo("TLSv1.2");
            assertThat(get(socket)).isEqualTo("200 ok");
        }
    }

    @Test
    void requiredClientAuthRefusesClientsWithoutACertificateFromClientCas() throws Exception {
        final TestCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final TestCerts.Authority clientCa = TestCerts.authority(dir, "clients-ca");
        final TestCerts.Issued alice = clientCa.issue(dir, "alice", List.of("alice"), KeyType.EC, KeyFormat.PKCS8);
        final TestCerts.Authority strangerCa = TestCerts.authority(dir, "stranger-ca");
        final TestCerts.Issued mallory =
                strangerCa.issue(dir, "mallory", List.of("mallory"), KeyType.EC, KeyFormat.PKCS8);
        server = TlsFixture.start(
                ServerTls.create(clientAuthPolicy(leaf, TlsPolicy.ClientAuth.REQUIRED, clientCa.certificatePath())));

        // TLS 1.3: the client may finish its side before the server refuses, so the refusal
        // shows at the first exchange rather than in startHandshake.
        assertThatThrownBy(() -> {
                    try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
                        get(socket);
                    }
                })
                .isInstanceOf(IOException.class);
        assertThatThrownBy(() -> {
                    try (SSLSocket socket = handshake(client(ca.certificate(), mallory), port(server), "localhost")) {
                        get(socket);
                    }
                })
                .isInstanceOf(IOException.class);
        try (SSLSocket socket = handshake(client(ca.certificate(), alice), port(server), "localhost")) {
            assertThat(get(socket)).isEqualTo("200 ok");
        }
    }

    @Test
    void optionalClientAuthLetsClientsWithoutACertificateIn() throws Exception {
        final TestCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final TestCerts.Authority clientCa = TestCerts.authority(dir, "clients-ca");
        final TestCerts.Issued alice = clientCa.issue(dir, "alice", List.of("alice"), KeyType.EC, KeyFormat.PKCS8);
        server = TlsFixture.start(
                ServerTls.create(clientAuthPolicy(leaf, TlsPolicy.ClientAuth.OPTIONAL, clientCa.certificatePath())));

        try (SSLSocket anonymous = handshake(client(ca.certificate(), null), port(server), "localhost");
                SSLSocket withCert = handshake(client(ca.certificate(), alice), port(server), "localhost")) {
            assertThat(get(anonymous)).isEqualTo("200 ok");
            assertThat(get(withCert)).isEqualTo("200 ok");
            assertThat(withCert.getSession().getLocalCertificates()).hasSize(1);
        }
    }

    @Test
    void expiredCertificateIsOnlyAWarning() throws Exception {
        final TestCerts.Issued old = ca.issue(
                dir,
                "old",
                List.of("localhost"),
                KeyType.EC,
                KeyFormat.PKCS8,
                Instant.now().minus(Duration.ofDays(10)),
                Duration.ofDays(1));
        server = TlsFixture.start(ServerTls.create(pemPolicy(List.of(old))));

        // A client that verifies refuses it; the listener itself is up and serving it.
        assertThatThrownBy(() -> handshake(client(ca.certificate(), null), port(server), "localhost")
                        .close())
                .isInstanceOf(IOException.class);
        try (SSLSocket socket = handshake(trustAll(), port(server), "localhost")) {
            assertThat(serial(socket)).isEqualTo(old.x509().getSerialNumber());
        }
    }

    @Test
    void leavesRenegotiationOffAndCipherExclusionsOn() {
        final TestCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final var ssl = ServerTls.create(pemPolicy(List.of(leaf)));

        assertThat(ssl.isRenegotiationAllowed()).isFalse();
        assertThat(ssl.getIncludeProtocols()).containsExactly("TLSv1.3", "TLSv1.2");
        assertThat(ssl.getExcludeCipherSuites()).contains("^TLS_RSA_.*$", "^.*_(MD5|SHA|SHA1)$");
    }

    private static TlsPolicy clientAuthPolicy(TestCerts.Issued leaf, TlsPolicy.ClientAuth auth, Path clientCas) {
        return new TlsPolicy(
                pemPolicy(List.of(leaf)).certificates(),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3", "TLSv1.2"),
                auth,
                Optional.of(clientCas));
    }

    private static SSLContext trustAll() throws Exception {
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(
                null,
                new javax.net.ssl.TrustManager[] {
                    new javax.net.ssl.X509TrustManager() {
                        @Override
                        public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType) {}

                        @Override
                        public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType) {}

                        @Override
                        public java.security.cert.X509Certificate[] getAcceptedIssuers() {
                            return new java.security.cert.X509Certificate[0];
                        }
                    }
                },
                null);
        return context;
    }

    /** ClientHello with legacy_version 3.2 (TLS 1.1), no supported_versions extension, CBC suites of that era. */
    private static byte[] tls11ClientHello() {
        final String random = "00".repeat(32);
        final String body = "0302" + random + "00" // version, random, empty session id
                + "0006" + "c013" + "c014" + "002f" // ECDHE-RSA-AES128/256-SHA, RSA-AES128-SHA
                + "0100" // compression: null
                + "0000"; // no extensions
        final int bodyLength = body.length() / 2;
        final String handshake = "01" + String.format("%06x", bodyLength) + body;
        final String record = "16" + "0301" + String.format("%04x", handshake.length() / 2) + handshake;
        return HexFormat.of().parseHex(record);
    }
}
