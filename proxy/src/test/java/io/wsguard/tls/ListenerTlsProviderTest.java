package io.wsguard.tls;

import static io.wsguard.tls.TlsFixture.client;
import static io.wsguard.tls.TlsFixture.get;
import static io.wsguard.tls.TlsFixture.handshake;
import static io.wsguard.tls.TlsFixture.pemPolicy;
import static io.wsguard.tls.TlsFixture.port;
import static io.wsguard.tls.TlsFixture.serial;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.wsguard.demo.DevCerts;
import io.wsguard.demo.DevCerts.KeyFormat;
import io.wsguard.demo.DevCerts.KeyType;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.Provider;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.X509ExtendedKeyManager;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** The listeners' JSSE provider: Conscrypt when it loads, the JDK's otherwise (and for Ed25519 certificates). */
@Timeout(60)
class ListenerTlsProviderTest {

    @TempDir
    Path dir;

    private DevCerts.Authority ca;
    private Server server;
    private final ListAppender<ILoggingEvent> logged = new ListAppender<>();

    @BeforeEach
    void setUp() {
        ca = DevCerts.authority(dir, "ca");
        logged.start();
        ((Logger) LoggerFactory.getLogger(ListenerTlsProvider.class)).addAppender(logged);
    }

    @AfterEach
    void tearDown() throws Exception {
        ((Logger) LoggerFactory.getLogger(ListenerTlsProvider.class)).detachAppender(logged);
        if (server != null) {
            server.stop();
        }
    }

    @Test
    void listenersHandshakeOnConscrypt() throws Exception {
        // The uber jar ships natives for linux/osx x86_64 and aarch64 and windows x86_64: every machine
        // this project builds on. Failing here means the listeners silently lost the native provider.
        assertThat(ListenerTlsProvider.current()).map(Provider::getName).contains("Conscrypt");

        final DevCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.RSA, KeyFormat.PKCS8);
        final SslContextFactory.Server ssl = ServerTls.create(pemPolicy(List.of(leaf)));
        server = TlsFixture.start(ssl);

        assertThat(ssl.getSslContext().getProvider().getName()).isEqualTo("Conscrypt");
        assertThat(ssl.newSSLEngine().getClass().getName()).startsWith("org.conscrypt.");
        try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(serial(socket)).isEqualTo(leaf.x509().getSerialNumber());
            assertThat(socket.getSession().getProtocol()).isEqualTo("TLSv1.3");
            assertThat(get(socket)).isEqualTo("200 ok");
        }
    }

    @Test
    void conscryptGetsItsOwnFormOfEachKeyOncePerLoad() throws Exception {
        final DevCerts.Issued rsa = ca.issue(dir, "rsa", List.of("rsa.test"), KeyType.RSA, KeyFormat.PKCS1);
        final DevCerts.Issued ec = ca.issue(dir, "ec", List.of("ec.test"), KeyType.EC, KeyFormat.SEC1);
        final KeyMaterial material = KeyMaterial.load(pemPolicy(List.of(rsa, ec)));
        final KeyManagerFactory jdk = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        jdk.init(material.keyStore(), material.password().toCharArray());
        final X509ExtendedKeyManager keys = new ListenerTlsProvider.NativeKeys(
                (X509ExtendedKeyManager) jdk.getKeyManagers()[0], ListenerTlsProvider.current().orElseThrow());

        for (String alias : material.aliases()) {
            final PrivateKey key = keys.getPrivateKey(alias);
            assertThat(key.getClass().getName()).startsWith("org.conscrypt.");
            assertThat(keys.getPrivateKey(alias)).isSameAs(key);
            assertThat(keys.getCertificateChain(alias)).isNotEmpty();
        }
        assertThat(keys.getPrivateKey(null)).isNull();
        assertThat(keys.getPrivateKey("no-such-alias")).isNull();
    }

    @Test
    void nativeLibraryThatDoesNotLoadFallsBackToTheJdkWithOneWarning() throws Exception {
        final Optional<Provider> chosen = ListenerTlsProvider.choose(null, () -> {
            throw new UnsatisfiedLinkError("no conscrypt_openjdk_jni-linux-sparc in java.library.path");
        });

        assertThat(chosen).isEmpty();
        assertThat(logged.list).singleElement().satisfies(event -> {
            assertThat(event.getLevel()).isEqualTo(Level.WARN);
            assertThat(event.getFormattedMessage()).contains("Conscrypt", "not available", "JDK provider",
                                                             "no conscrypt_openjdk_jni-linux-sparc");
        });

        // And the listener still works, on the JDK's provider.
        final DevCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.EC, KeyFormat.PKCS8);
        final SslContextFactory.Server ssl = ListenerTlsProvider.newFactory(chosen);
        KeyMaterial.load(pemPolicy(List.of(leaf))).applyTo(ssl);
        server = TlsFixture.start(ssl);
        assertThat(ssl.getSslContext().getProvider().getName()).isEqualTo("SunJSSE");
        try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(get(socket)).isEqualTo("200 ok");
        }
    }

    @Test
    void jdkSettingSkipsConscryptWithoutLoadingIt() {
        final AtomicBoolean loaded = new AtomicBoolean();

        assertThat(ListenerTlsProvider.choose(" JDK ", () -> {
            loaded.set(true);
            throw new AssertionError("must not be called");
        })).isEmpty();
        assertThat(loaded).isFalse();
    }

    @Test
    void ed25519CertificateKeepsItsListenerOnTheJdkProvider() throws Exception {
        final DevCerts.Issued leaf = ca.issue(dir, "server", List.of("localhost"), KeyType.ED25519, KeyFormat.PKCS8);
        final SslContextFactory.Server ssl = ServerTls.create(pemPolicy(List.of(leaf)));
        server = TlsFixture.start(ssl);

        assertThat(ssl.getSslContext().getProvider().getName()).isEqualTo("SunJSSE");
        assertThat(logged.list).anySatisfy(event -> assertThat(event.getFormattedMessage())
                .contains("JDK provider for this listener").containsPattern("Ed(DSA|25519)"));
        try (SSLSocket socket = handshake(client(ca.certificate(), null), port(server), "localhost")) {
            assertThat(serial(socket)).isEqualTo(leaf.x509().getSerialNumber());
        }
    }
}
