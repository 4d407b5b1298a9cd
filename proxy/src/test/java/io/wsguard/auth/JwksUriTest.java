package io.wsguard.auth;

import io.wsguard.testing.MutableClock;
import static io.wsguard.auth.JwtFixtures.NOW;
import static io.wsguard.auth.JwtFixtures.goodClaims;
import static io.wsguard.auth.JwtFixtures.policy;
import static io.wsguard.auth.JwtFixtures.sign;
import static io.wsguard.auth.JwtFixtures.signer;
import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import io.wsguard.check.Reason;
import io.wsguard.demo.DevCerts;
import java.net.ServerSocket;
import java.net.URI;
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
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;
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
    private static final JwtVerifier.RemoteTiming FAST = new JwtVerifier.RemoteTiming(Duration.ofSeconds(60),
            Duration.ofSeconds(1), Duration.ofSeconds(1), Duration.ofMillis(100), Duration.ofSeconds(60),
            Duration.ofSeconds(1), Duration.ofSeconds(1), 64 * 1024);

    /**
     * For tests that count fetches: a busy machine (a cold JVM's first TLS handshake on 2 shared
     * cores) may take over a second to fetch, and a waiter whose refresh timeout passes fetches
     * again. The count is the point there, not the timing.
     */
    private static final JwtVerifier.RemoteTiming PATIENT = new JwtVerifier.RemoteTiming(Duration.ofSeconds(60),
            Duration.ofSeconds(20), Duration.ofSeconds(1), Duration.ofMillis(100), Duration.ofSeconds(60),
            Duration.ofSeconds(10), Duration.ofSeconds(10), 64 * 1024);

    @TempDir
    static Path dir;

    static DevCerts.Authority ca;
    static DevCerts.Issued serverCert;
    static SSLSocketFactory trustingCa;
    static KeyPair k1;
    static KeyPair k2;

    private final AtomicReference<String> jwks = new AtomicReference<>();
    private final AtomicInteger fetches = new AtomicInteger();
    private final List<String> paths = new CopyOnWriteArrayList<>();
    private Server server;
    private URI uri;
    private ExecutorService pool;

    @BeforeAll
    static void certificatesAndKeys() throws Exception {
        ca = DevCerts.authority(dir, "jwks-ca");
        serverCert = ca.issue(dir, "jwks-server", List.of("localhost", "127.0.0.1"), DevCerts.KeyType.EC,
                              DevCerts.KeyFormat.PKCS8);
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
        final KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        keys.setKeyEntry("server", serverCert.keyPair().getPrivate(), "pw".toCharArray(),
                         new X509Certificate[] {serverCert.x509()});
        final SslContextFactory.Server ssl = new SslContextFactory.Server();
        ssl.setKeyStore(keys);
        ssl.setKeyStorePassword("pw");
        server = new Server();
        final ServerConnector connector = new ServerConnector(server, new SslConnectionFactory(ssl, "http/1.1"),
                                                              new HttpConnectionFactory(new HttpConfiguration()));
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
                Content.Sink.write(response, true, jwks.get(), callback);
                return true;
            }
        });
        server.start();
        uri = URI.create("https://127.0.0.1:" + connector.getLocalPort() + "/.well-known/jwks.json");
        pool = Executors.newFixedThreadPool(4);
    }

    @AfterEach
    void stopIdp() throws Exception {
        server.stop();
        pool.shutdownNow();
        assertThat(pool.awaitTermination(5, TimeUnit.SECONDS)).isTrue();
    }

    private JwtVerifier verifier(URI jwksUri, JwtVerifier.RemoteTiming timing) throws JwtConfigException {
        return JwtVerifier.create(policy("RS256", "ES256").jwksUri(jwksUri).build(), new MutableClock(NOW), pool,
                                  trustingCa, timing, JwtVerifier.CACHE_CAPACITY);
    }

    private static String token(KeyPair keys, String kid, String jti) {
        return sign(signer(keys), new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(kid).build(),
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
        try (JwtVerifier verifier = JwtVerifier.create(policy("RS256").jwksUri(uri).build(), new MutableClock(NOW),
                                                       task -> {
                                                           tasks.incrementAndGet();
                                                           pool.execute(task);
                                                       }, trustingCa, FAST, JwtVerifier.CACHE_CAPACITY)) {
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
                assertThat(result).isEqualTo(new JwtResult.Invalid(Reason.TOKEN_INVALID,
                                                                   "kid k" + (100 + i) + " is not in the key set"));
            }
            assertThat(fetches.get()).as("one refetch allowed per rate-limit interval").isLessThanOrEqualTo(2);
        }
    }

    @Test
    void hmacTokensNeverReachTheKeySet() throws Exception {
        try (JwtVerifier verifier = JwtVerifier.create(policy("HS256", "RS256").jwksUri(uri).build(), new MutableClock(NOW),
                                                       pool, trustingCa, FAST, JwtVerifier.CACHE_CAPACITY)) {
            for (int i = 0; i < 5; i++) {
                final String token = sign(signer(JwtFixtures.SECRET_32), JWSAlgorithm.HS256, goodClaims().jwtID("h" + i).build());
                final CompletableFuture<JwtResult> result = verifier.verify(token).toCompletableFuture();
                assertThat(result).isDone();
                assertThat(result.join()).isEqualTo(new JwtResult.Invalid(Reason.TOKEN_INVALID,
                                                                          "no key for alg HS256 (jwksUri serves public keys only)"));
            }
            assertThat(fetches).hasValue(0);
        }
    }

    @Test
    void keepsVerifyingThroughAnIdpOutage() throws Exception {
        final JwtVerifier.RemoteTiming shortCache = new JwtVerifier.RemoteTiming(Duration.ofMillis(300),
                Duration.ofMillis(100), Duration.ofMillis(100), Duration.ofMillis(50), Duration.ofSeconds(60),
                Duration.ofMillis(500), Duration.ofMillis(500), 64 * 1024);
        try (JwtVerifier verifier = verifier(uri, shortCache)) {
            assertThat(await(verifier.verify(token(k1, "k1", "before")))).isInstanceOf(JwtResult.Valid.class);
            server.stop();

            Thread.sleep(500); // past the 300 ms cache TTL (wall clock, inside nimbus): only the outage cache is left
            for (int i = 0; i < 5; i++) {
                assertThat(await(verifier.verify(token(k1, "k1", "during" + i)))).isInstanceOf(JwtResult.Valid.class);
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
            // Only /moved was asked for (nimbus retries a failed fetch once); never where it pointed.
            assertThat(paths).isNotEmpty().containsOnly("/moved");
        }
    }

    @Test
    void untrustedServerCertificateIsCheckFailed() throws Exception {
        try (JwtVerifier verifier = JwtVerifier.create(policy("RS256").jwksUri(uri).build(), new MutableClock(NOW), pool,
                                                       null, FAST, JwtVerifier.CACHE_CAPACITY)) {
            final JwtResult result = await(verifier.verify(token(k1, "k1", "x")));
            assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CHECK_FAILED);
            assertThat(fetches).hasValue(0);
        }
    }
}
