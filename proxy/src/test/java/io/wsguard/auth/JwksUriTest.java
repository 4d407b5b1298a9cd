package io.wsguard.auth;

import static io.wsguard.auth.JwtFixtures.NOW;
import static io.wsguard.auth.JwtFixtures.goodClaims;
import static io.wsguard.auth.JwtFixtures.policy;
import static io.wsguard.auth.JwtFixtures.sign;
import static io.wsguard.auth.JwtFixtures.signer;
import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import io.wsguard.check.Reason;
import io.wsguard.testing.MutableClock;
import io.wsguard.testing.TestCerts;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;
import org.awaitility.Awaitility;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.FutureCallback;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code jwksUri} against a real HTTPS server (Jetty, a dev CA): caching, rotation, outages. */
@Timeout(30)
class JwksUriTest {

    /** Fast timings: the nimbus cache runs on wall-clock time, not on the injected Clock. */
    private static final JwtVerifier.RemoteTiming FAST = new JwtVerifier.RemoteTiming(
            Duration.ofSeconds(60),
            Duration.ofSeconds(1),
            Duration.ofSeconds(1),
            Duration.ofMillis(100),
            Duration.ofSeconds(60),
            Duration.ofSeconds(1),
            Duration.ofSeconds(1),
            Duration.ofSeconds(1),
            64 * 1024);

    /**
     * For tests that count fetches: a busy machine (a cold JVM's first TLS handshake on 2 shared
     * cores) may take over a second to fetch, and a waiter whose refresh timeout passes fetches
     * again. The count is the point there, not the timing.
     */
    private static final JwtVerifier.RemoteTiming PATIENT = new JwtVerifier.RemoteTiming(
            Duration.ofSeconds(60),
            Duration.ofSeconds(20),
            Duration.ofSeconds(1),
            Duration.ofMillis(100),
            Duration.ofSeconds(60),
            Duration.ofSeconds(10),
            Duration.ofSeconds(10),
            Duration.ofSeconds(20),
            64 * 1024);

    /**
     * For the dripping IdP: each fetch has 1 s in all, each read 1 s; the IdP sends a byte every
     * 250 ms, so no read ever times out and the whole key set would take about two minutes. A short
     * cache (as short as nimbus allows with these timeouts), so that the outage cache is what is left
     * after a fetch fails.
     */
    private static final JwtVerifier.RemoteTiming DRIP = new JwtVerifier.RemoteTiming(
            Duration.ofMillis(1700),
            Duration.ofMillis(1500),
            Duration.ofMillis(100),
            Duration.ofMillis(50),
            Duration.ofSeconds(60),
            Duration.ofSeconds(1),
            Duration.ofSeconds(1),
            Duration.ofSeconds(1),
            64 * 1024);

    private static final Duration DRIP_INTERVAL = Duration.ofMillis(250);

    /** What a verification may take beyond the key wait on a busy 2-core machine: thread hops, a GC. */
    private static final Duration SCHEDULING_SLACK = Duration.ofMillis(1500);

    @TempDir
    static Path dir;

    static TestCerts.Authority ca;
    static TestCerts.Issued serverCert;
    static SSLSocketFactory trustingCa;
    static KeyPair k1;
    static KeyPair k2;

    private final AtomicReference<String> jwks = new AtomicReference<>();
    private final AtomicInteger fetches = new AtomicInteger();
    /** When set, the IdP answers 200 at once and then sends the key set a byte at a time. */
    private final AtomicBoolean drip = new AtomicBoolean();

    private final AtomicInteger dripsCut = new AtomicInteger();
    private final AtomicInteger dripsFinished = new AtomicInteger();
    private final List<String> paths = new CopyOnWriteArrayList<>();
    private Server server;
    private URI uri;
    private ExecutorService pool;

    @BeforeAll
    static void certificatesAndKeys() throws Exception {
        ca = TestCerts.authority(dir, "jwks-ca");
        serverCert = ca.issue(
                dir, "jwks-server", List.of("localhost", "127.0.0.1"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", ca.certificate());
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        trustingCa = context.getSocketFactory();
        k1 = JwtFixtures.rsa();
        k2 = JwtFixtures.rsa();
    }

    @BeforeEach
    void startIdp() throws Exception {
        jwks.set(JwtFixtures.jwks(JwtFixtures.publicJwk(k1.getPublic(), "k1")));
        server = idp(serverCert);
        uri = URI.create("https://127.0.0.1:" + port(server) + "/.well-known/jwks.json");
        pool = Executors.newFixedThreadPool(4);
    }

    private static int port(Server server) {
        return ((ServerConnector) server.getConnectors()[0]).getLocalPort();
    }

    /** A started IdP on 127.0.0.1, port 0, serving {@code cert}. */
    private Server idp(TestCerts.Issued cert) throws Exception {
        final KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        keys.setKeyEntry(
                "server", cert.keyPair().getPrivate(), "pw".toCharArray(), new X509Certificate[] {cert.x509()});
        final SslContextFactory.Server ssl = new SslContextFactory.Server();
        ssl.setKeyStore(keys);
        ssl.setKeyStorePassword("pw");
        final Server server = new Server();
        final ServerConnector connector = new ServerConnector(
                server, new SslConnectionFactory(ssl, "http/1.1"), new HttpConnectionFactory(new HttpConfiguration()));
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        server.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) {
                fetches.incrementAndGet();
                paths.add(request.getHttpURI().getPath());
                if (request.getHttpURI().getPath().equals("/moved")) {
                    response.setStatus(302);
                    response.getHeaders().put(HttpHeader.LOCATION, "/.well-known/jwks.json");
                    callback.succeeded();
                    return true;
                }
                response.setStatus(200);
                response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
                if (drip.get()) {
                    dripKeySet(response, callback);
                    return true;
                }
                Content.Sink.write(response, true, jwks.get(), callback);
                return true;
            }
        });
        server.start();
        return server;
    }

    /** One byte per {@link #DRIP_INTERVAL}: never idle long enough for a read timeout. */
    private void dripKeySet(Response response, Callback callback) {
        final byte[] body = jwks.get().getBytes(StandardCharsets.UTF_8);
        try {
            for (byte b : body) {
                final FutureCallback written = new FutureCallback();
                response.write(false, ByteBuffer.wrap(new byte[] {b}), written);
                written.get(10, TimeUnit.SECONDS);
                Thread.sleep(DRIP_INTERVAL.toMillis());
                if (!drip.get()) {
                    throw new IllegalStateException("test over");
                }
            }
            dripsFinished.incrementAndGet();
            response.write(true, ByteBuffer.allocate(0), callback);
        } catch (Exception e) {
            dripsCut.incrementAndGet();
            callback.failed(e);
        }
    }

    @AfterEach
    void stopIdp() throws Exception {
        drip.set(false);
        server.stop();
        pool.shutdownNow();
        assertThat(pool.awaitTermination(5, TimeUnit.SECONDS)).isTrue();
    }

    private JwtVerifier verifier(URI jwksUri, JwtVerifier.RemoteTiming timing) throws JwtConfigException {
        return JwtVerifier.create(
                policy("RS256", "ES256").jwksUri(jwksUri).build(),
                new MutableClock(NOW),
                pool,
                trustingCa,
                timing,
                JwtVerifier.CACHE_CAPACITY);
    }

    private static String token(KeyPair keys, String kid, String jti) {
        return sign(
                signer(keys),
                new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(kid).build(),
                goodClaims().jwtID(jti).build());
    }

    private static JwtResult await(java.util.concurrent.CompletionStage<JwtResult> stage) throws Exception {
        return stage.toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void hundredDistinctTokensCostOneFetch() throws Exception {
        try (JwtVerifier verifier = verifier(uri, PATIENT)) {
            final List<CompletableFuture<JwtResult>> results = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                results.add(verifier.verify(token(k1, "k1", "t" + i)).toCompletableFuture());
            }
            for (CompletableFuture<JwtResult> result : results) {
                assertThat(result.get(10, TimeUnit.SECONDS)).isInstanceOf(JwtResult.Valid.class);
            }
            assertThat(fetches).hasValue(1);
            assertThat(verifier.signatureChecks()).isEqualTo(100);
        }
    }

    @Test
    void verifiesOffTheCallersThreadUnlessCached() throws Exception {
        final AtomicInteger tasks = new AtomicInteger();
        try (JwtVerifier verifier = JwtVerifier.create(
                policy("RS256").jwksUri(uri).build(),
                new MutableClock(NOW),
                task -> {
                    tasks.incrementAndGet();
                    pool.execute(task);
                },
                trustingCa,
                FAST,
                JwtVerifier.CACHE_CAPACITY)) {
            final String token = token(k1, "k1", "once");
            assertThat(await(verifier.verify(token))).isInstanceOf(JwtResult.Valid.class);
            assertThat(tasks).hasValue(1);

            final CompletableFuture<JwtResult> cached = verifier.verify(token).toCompletableFuture();
            assertThat(cached).isDone();
            assertThat(cached.join()).isInstanceOf(JwtResult.Valid.class);
            assertThat(tasks).hasValue(1);

            // Garbage is refused inline too: no executor hop, no fetch.
            assertThat(verifier.verify("garbage").toCompletableFuture()).isDone();
            assertThat(tasks).hasValue(1);
        }
    }

    @Test
    void picksUpKeyRotationWithoutANewVerifier() throws Exception {
        try (JwtVerifier verifier = verifier(uri, FAST)) {
            assertThat(await(verifier.verify(token(k1, "k1", "before")))).isInstanceOf(JwtResult.Valid.class);
            assertThat(fetches).hasValue(1);

            jwks.set(JwtFixtures.jwks(JwtFixtures.publicJwk(k2.getPublic(), "k2")));
            Thread.sleep(FAST.rateLimit().toMillis()); // let the rate limit allow a refetch (wall clock, inside nimbus)

            assertThat(await(verifier.verify(token(k2, "k2", "after")))).isInstanceOf(JwtResult.Valid.class);
            assertThat(fetches).hasValue(2);

            Thread.sleep(FAST.rateLimit().toMillis());
            final JwtResult old = await(verifier.verify(token(k1, "k1", "old key, new token")));
            assertThat(old).isEqualTo(new JwtResult.Invalid(Reason.TOKEN_INVALID, "kid k1 is not in the key set"));
        }
    }

    @Test
    void unknownKidsAreRateLimitedFetches() throws Exception {
        try (JwtVerifier verifier = verifier(uri, FAST.withRateLimit(Duration.ofSeconds(30)))) {
            assertThat(await(verifier.verify(token(k1, "k1", "first")))).isInstanceOf(JwtResult.Valid.class);
            for (int i = 0; i < 20; i++) {
                final JwtResult result = await(verifier.verify(token(k2, "k" + (100 + i), "unknown" + i)));
                assertThat(result)
                        .isEqualTo(new JwtResult.Invalid(
                                Reason.TOKEN_INVALID, "kid k" + (100 + i) + " is not in the key set"));
            }
            assertThat(fetches.get())
                    .as("one refetch allowed per rate-limit interval")
                    .isLessThanOrEqualTo(2);
        }
    }

    @Test
    void hmacTokensNeverReachTheKeySet() throws Exception {
        try (JwtVerifier verifier = JwtVerifier.create(
                policy("HS256", "RS256").jwksUri(uri).build(),
                new MutableClock(NOW),
                pool,
                trustingCa,
                FAST,
                JwtVerifier.CACHE_CAPACITY)) {
            for (int i = 0; i < 5; i++) {
                final String token = sign(
                        signer(JwtFixtures.SECRET_32),
                        JWSAlgorithm.HS256,
                        goodClaims().jwtID("h" + i).build());
                final CompletableFuture<JwtResult> result =
                        verifier.verify(token).toCompletableFuture();
                assertThat(result).isDone();
                assertThat(result.join())
                        .isEqualTo(new JwtResult.Invalid(
                                Reason.TOKEN_INVALID, "no key for alg HS256 (jwksUri serves public keys only)"));
            }
            assertThat(fetches).hasValue(0);
        }
    }

    @Test
    void keepsVerifyingThroughAnIdpOutage() throws Exception {
        final JwtVerifier.RemoteTiming shortCache = new JwtVerifier.RemoteTiming(
                Duration.ofMillis(300),
                Duration.ofMillis(100),
                Duration.ofMillis(100),
                Duration.ofMillis(50),
                Duration.ofSeconds(60),
                Duration.ofMillis(500),
                Duration.ofMillis(500),
                Duration.ofMillis(500),
                64 * 1024);
        try (JwtVerifier verifier = verifier(uri, shortCache)) {
            assertThat(await(verifier.verify(token(k1, "k1", "before")))).isInstanceOf(JwtResult.Valid.class);
            server.stop();

            Thread.sleep(500); // past the 300 ms cache TTL (wall clock, inside nimbus): only the outage cache is left
            for (int i = 0; i < 5; i++) {
                assertThat(await(verifier.verify(token(k1, "k1", "during" + i))))
                        .isInstanceOf(JwtResult.Valid.class);
            }
            assertThat(fetches).hasValue(1);
        }
    }

    @Test
    void idpDownFromTheStartIsCheckFailed() throws Exception {
        final int closedPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            closedPort = socket.getLocalPort();
        }
        try (JwtVerifier verifier = verifier(URI.create("https://127.0.0.1:" + closedPort + "/jwks"), FAST)) {
            for (int i = 0; i < 4; i++) { // the later ones are rate-limited: still no keys, still 503
                final JwtResult result = await(verifier.verify(token(k1, "k1", "t" + i)));
                assertThat(result).isInstanceOf(JwtResult.Invalid.class);
                assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
                assertThat(((JwtResult.Invalid) result).detail()).contains("jwksUri");
            }
        }
    }

    @Test
    void aRedirectIsAFailedFetchNotAKeySetFromElsewhere() throws Exception {
        try (JwtVerifier verifier = verifier(uri.resolve("/moved"), FAST)) {
            final JwtResult result = await(verifier.verify(token(k1, "k1", "redirected")));
            assertThat(result).isInstanceOf(JwtResult.Invalid.class);
            assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
            // Only /moved was asked for, never where it pointed.
            assertThat(paths).isNotEmpty().containsOnly("/moved");
        }
    }

    @Test
    void untrustedServerCertificateIsCheckFailed() throws Exception {
        try (JwtVerifier verifier = JwtVerifier.create(
                policy("RS256").jwksUri(uri).build(),
                new MutableClock(NOW),
                pool,
                null,
                FAST,
                JwtVerifier.CACHE_CAPACITY)) {
            final JwtResult result = await(verifier.verify(token(k1, "k1", "x")));
            assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
            assertThat(fetches).hasValue(0);
        }
    }

    @Test
    void aCertificateForAnotherHostIsCheckFailed() throws Exception {
        // The fetch's deadline layers TLS over a socket of its own: hostname verification must survive that.
        final TestCerts.Issued elsewhere = ca.issue(
                dir, "jwks-elsewhere", List.of("elsewhere.example"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final Server other = idp(elsewhere);
        try (JwtVerifier verifier = verifier(URI.create("https://127.0.0.1:" + port(other) + "/jwks"), FAST)) {
            final JwtResult result = await(verifier.verify(token(k1, "k1", "wrong host")));
            assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
            assertThat(fetches).hasValue(0);
        } finally {
            other.stop();
        }
    }

    @Test
    void aDrippingIdpIsAFailedFetchWithinTheDeadline() throws Exception {
        drip.set(true);
        try (JwtVerifier verifier = verifier(uri, DRIP)) {
            final long start = System.nanoTime();
            final JwtResult result = await(verifier.verify(token(k1, "k1", "dripped")));
            final Duration took = Duration.ofNanos(System.nanoTime() - start);

            assertThat(result).isInstanceOf(JwtResult.Invalid.class);
            assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
            assertThat(took).isLessThan(DRIP.keyWait().plus(SCHEDULING_SLACK));
            // The IdP's side sees its connection closed: no fetch lingers on in the background.
            Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> dripsCut.get() >= 1);
            assertThat(dripsFinished).hasValue(0);
        }
    }

    @Test
    void keepsVerifyingThroughADrippingIdp() throws Exception {
        try (JwtVerifier verifier = verifier(uri, DRIP)) {
            assertThat(await(verifier.verify(token(k1, "k1", "before")))).isInstanceOf(JwtResult.Valid.class);
            drip.set(true);
            Thread.sleep(DRIP.cacheTtl().toMillis()
                    + 200); // past the cache TTL (wall clock, inside nimbus): keys need a fetch

            for (int i = 0; i < 3; i++) {
                final long start = System.nanoTime();
                assertThat(await(verifier.verify(token(k1, "k1", "during" + i))))
                        .isInstanceOf(JwtResult.Valid.class);
                assertThat(Duration.ofNanos(System.nanoTime() - start))
                        .isLessThan(DRIP.keyWait().plus(SCHEDULING_SLACK));
            }
            assertThat(dripsFinished).hasValue(0);
        }
    }

    @Test
    void anUnknownKidWhileTheIdpDripsIsAnsweredWithinTheDeadline() throws Exception {
        // A long cache: no expiry and no refresh ahead during the test, only the refetch the unknown kid asks for.
        final JwtVerifier.RemoteTiming longCache = new JwtVerifier.RemoteTiming(
                Duration.ofSeconds(60),
                DRIP.refreshTimeout(),
                Duration.ofSeconds(1),
                DRIP.rateLimit(),
                DRIP.outageTolerance(),
                DRIP.connectTimeout(),
                DRIP.readTimeout(),
                DRIP.fetchTimeout(),
                DRIP.sizeLimit());
        try (JwtVerifier verifier = verifier(uri, longCache)) {
            assertThat(await(verifier.verify(token(k1, "k1", "before")))).isInstanceOf(JwtResult.Valid.class);
            drip.set(true);
            Thread.sleep(DRIP.rateLimit().toMillis());

            final long start = System.nanoTime();
            assertThat(await(verifier.verify(token(k2, "k9", "unknown kid during the outage"))))
                    .isEqualTo(new JwtResult.Invalid(Reason.TOKEN_INVALID, "kid k9 is not in the key set"));
            assertThat(Duration.ofNanos(System.nanoTime() - start))
                    .isLessThan(longCache.keyWait().plus(SCHEDULING_SLACK));
            assertThat(fetches).hasValue(2);
            // The keys fetched before the outage still verify, from the cache.
            assertThat(await(verifier.verify(token(k1, "k1", "after")))).isInstanceOf(JwtResult.Valid.class);
            Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> dripsCut.get() >= 1);
            assertThat(dripsFinished).hasValue(0);
        }
    }

    @Test
    void everyHandshakeWaitingOnADrippingIdpIsBoundedByTheKeyWait() throws Exception {
        drip.set(true);
        try (JwtVerifier verifier = verifier(uri, DRIP)) {
            // Six at once on four threads: some queue, some wait for the first fetch and then fetch again.
            final List<CompletableFuture<Duration>> waits = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                final long start = System.nanoTime();
                waits.add(verifier.verify(token(k1, "k1", "concurrent" + i))
                        .toCompletableFuture()
                        .thenApply(result -> {
                            assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
                            return Duration.ofNanos(System.nanoTime() - start);
                        }));
            }
            for (CompletableFuture<Duration> wait : waits) {
                assertThat(wait.get(10, TimeUnit.SECONDS))
                        .isLessThan(DRIP.keyWait().plus(SCHEDULING_SLACK));
            }
        }
    }
}
