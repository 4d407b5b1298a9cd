package io.wsguard.bench.jmh;

import io.wsguard.auth.JwtResult;
import io.wsguard.auth.JwtVerifier;
import io.wsguard.auth.SmallCacheVerifiers;
import io.wsguard.auth.TokenMinter;
import io.wsguard.check.Verdict;
import io.wsguard.handshake.BenchChecks;
import io.wsguard.handshake.HandshakeChain;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.OriginPolicy;
import io.wsguard.policy.Secret;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.server.Request;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The token's cost per handshake, for RS256 (RSA-2048), ES256 (P-256) and HS256:
 * <ul>
 *   <li>{@code verifyCached}: {@link JwtVerifier#verify} of the same token every time (the
 *       production verifier; after the first call its verified-token cache hits: a reconnect).</li>
 *   <li>{@code verifyUncached}: a different token every call, from a ring of {@value #RING} tokens,
 *       through a verifier whose cache holds one token (see {@link SmallCacheVerifiers}): every call
 *       parses, checks the signature, the claims, and caches the token.</li>
 *   <li>{@code chainCached} / {@code chainUncached}: what the route adds to an upgrade, the
 *       {@link HandshakeChain} of {@code OriginAllowListCheck} and {@code JwtCheck} (token from the
 *       Authorization header) over a fresh {@code HandshakeRequest}, the same two ways.</li>
 * </ul>
 * Checked at set-up (every path allows) and at tear-down (the uncached verifier checked one
 * signature per call).
 */
@State(Scope.Benchmark)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class JwtBench {

    /** Distinct tokens cycled by the uncached benchmarks; far more than the 1-token cache. */
    static final int RING = 64;

    @Param({"RS256", "ES256", "HS256"})
    public String alg;

    private JwtVerifier cachedVerifier;
    private JwtVerifier uncachedVerifier;
    private String token;
    private final String[] ring = new String[RING];
    private HandshakeChain cachedChain;
    private HandshakeChain uncachedChain;
    private Request request;
    private final Request[] ringRequests = new Request[RING];
    private int next;
    private long uncachedCalls;
    private long checksBefore;

    @Setup
    public void setUp() throws Exception {
        final Path dir = Files.createTempDirectory("wsguard-jmh");
        final Optional<Secret> secret;
        final Optional<Path> publicKey;
        final Optional<Path> privateKey;
        switch (alg) {
            case "HS256" -> {
                final byte[] bytes = new byte[48];
                new SecureRandom().nextBytes(bytes);
                secret = Optional.of(new Secret(Base64.getEncoder().encodeToString(bytes)));
                publicKey = Optional.empty();
                privateKey = Optional.empty();
            }
            case "RS256", "ES256" -> {
                final KeyPairGenerator generator;
                if (alg.equals("RS256")) {
                    generator = KeyPairGenerator.getInstance("RSA");
                    generator.initialize(2048);
                } else {
                    generator = KeyPairGenerator.getInstance("EC");
                    generator.initialize(new ECGenParameterSpec("secp256r1"));
                }
                final KeyPair pair = generator.generateKeyPair();
                privateKey = Optional.of(pem(
                        dir.resolve("key.pem"), "PRIVATE KEY", pair.getPrivate().getEncoded()));
                publicKey = Optional.of(pem(
                        dir.resolve("pub.pem"), "PUBLIC KEY", pair.getPublic().getEncoded()));
                secret = Optional.empty();
            }
            default -> throw new IllegalArgumentException("alg: " + alg);
        }
        final AuthPolicy.JwtPolicy policy = new AuthPolicy.JwtPolicy(
                Optional.of("bench"),
                List.of("bench"),
                List.of(alg),
                Optional.empty(),
                Optional.empty(),
                publicKey,
                secret,
                Duration.ofSeconds(30),
                List.of("header"),
                Map.of(),
                AuthPolicy.OnExpiry.CLOSE,
                false);
        cachedVerifier = JwtVerifier.create(policy, Clock.systemUTC(), Runnable::run, null);
        uncachedVerifier = SmallCacheVerifiers.create(policy, 1);
        token = mint(secret, privateKey, 0);
        for (int i = 0; i < RING; i++) {
            ring[i] = mint(secret, privateKey, i + 1);
        }
        final OriginPolicy origin = new OriginPolicy(
                List.of("https://app.bench.test", "https://admin.bench.test", "https://*.cdn.bench.test"), false);
        cachedChain = BenchChecks.originThenToken(origin, cachedVerifier, List.of("header"));
        uncachedChain = BenchChecks.originThenToken(origin, uncachedVerifier, List.of("header"));
        request = BenchRequests.request(Map.of("Origin", "https://app.bench.test", "Authorization", "Bearer " + token));
        for (int i = 0; i < RING; i++) {
            ringRequests[i] = BenchRequests.request(
                    Map.of("Origin", "https://app.bench.test", "Authorization", "Bearer " + ring[i]));
        }
        for (int i = 0; i < 2; i++) {
            expectValid(verifyCached());
            expectValid(verifyUncached());
            expectAllowed(chainCached());
            expectAllowed(chainUncached());
        }
        for (Path file : List.of(dir.resolve("key.pem"), dir.resolve("pub.pem"))) {
            Files.deleteIfExists(file);
        }
        Files.delete(dir);
        uncachedCalls = 0;
        checksBefore = SmallCacheVerifiers.signatureChecks(uncachedVerifier);
    }

    @TearDown
    public void tearDown() {
        final long checks = SmallCacheVerifiers.signatureChecks(uncachedVerifier) - checksBefore;
        if (checks < uncachedCalls) {
            throw new IllegalStateException("uncached benchmark hit the cache: " + checks + " signature checks for "
                    + uncachedCalls + " calls");
        }
        cachedVerifier.close();
        uncachedVerifier.close();
    }

    @Benchmark
    public CompletionStage<JwtResult> verifyCached() {
        return cachedVerifier.verify(token);
    }

    @Benchmark
    @Warmup(iterations = 10, time = 1) // ~100 µs per call: the JIT needs more calls than 3 s give
    public CompletionStage<JwtResult> verifyUncached() {
        uncachedCalls++;
        return uncachedVerifier.verify(ring[next++ & (RING - 1)]);
    }

    @Benchmark
    public CompletionStage<Verdict> chainCached() {
        return cachedChain.run(BenchRequests.handshake(request), (deny, mode) -> {});
    }

    @Benchmark
    @Warmup(iterations = 10, time = 1) // ~100 µs per call: the JIT needs more calls than 3 s give
    public CompletionStage<Verdict> chainUncached() {
        uncachedCalls++;
        return uncachedChain.run(BenchRequests.handshake(ringRequests[next++ & (RING - 1)]), (deny, mode) -> {});
    }

    private String mint(Optional<Secret> secret, Optional<Path> key, int n) {
        return TokenMinter.mint(
                new TokenMinter.Options(
                        secret,
                        key,
                        Optional.empty(),
                        Optional.empty(),
                        Optional.of("user-" + n),
                        Optional.of("bench"),
                        List.of("bench"),
                        Duration.ofHours(2),
                        Map.of("jti", UUID.randomUUID().toString())),
                Clock.systemUTC());
    }

    private static Path pem(Path file, String type, byte[] der) throws IOException {
        final String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                .encodeToString(der);
        Files.writeString(
                file,
                "-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n",
                StandardCharsets.US_ASCII);
        return file;
    }

    private static void expectValid(CompletionStage<JwtResult> stage) {
        final JwtResult result = stage.toCompletableFuture().join();
        if (!(result instanceof JwtResult.Valid)) {
            throw new IllegalStateException("token did not verify: " + result);
        }
    }

    private static void expectAllowed(CompletionStage<Verdict> stage) {
        final Verdict verdict = stage.toCompletableFuture().join();
        if (verdict != Verdict.ALLOW) {
            throw new IllegalStateException("chain denied: " + verdict);
        }
    }
}
