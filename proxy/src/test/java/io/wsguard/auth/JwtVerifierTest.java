package io.wsguard.auth;

import static io.wsguard.auth.JwtFixtures.AUDIENCE;
import static io.wsguard.auth.JwtFixtures.ISSUER;
import static io.wsguard.auth.JwtFixtures.NOW;
import static io.wsguard.auth.JwtFixtures.SECRET_32;
import static io.wsguard.auth.JwtFixtures.SECRET_48;
import static io.wsguard.auth.JwtFixtures.SECRET_64;
import static io.wsguard.auth.JwtFixtures.goodClaims;
import static io.wsguard.auth.JwtFixtures.policy;
import static io.wsguard.auth.JwtFixtures.sign;
import static io.wsguard.auth.JwtFixtures.signer;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.nimbusds.jose.EncryptionMethod;
import com.nimbusds.jose.JWEAlgorithm;
import com.nimbusds.jose.JWEHeader;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.Payload;
import com.nimbusds.jose.crypto.RSAEncrypter;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.EncryptedJWT;
import com.nimbusds.jwt.JWTClaimsSet;
import io.wsguard.check.Reason;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.testing.MutableClock;
import io.wsguard.testing.TestCerts;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.interfaces.RSAPublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

@Timeout(30)
class JwtVerifierTest {

    /** Local keys never need the remote executor: fail loudly if one is used. */
    private static final Executor NO_REMOTE = task -> {
        throw new AssertionError("local keys must verify inline");
    };

    @TempDir
    static Path dir;

    static KeyPair rsa;
    static KeyPair attacker;
    static Path rsaPublicPem;
    static Path jwksFile;

    @BeforeAll
    static void keys() {
        rsa = JwtFixtures.rsa();
        attacker = JwtFixtures.rsa();
        rsaPublicPem = JwtFixtures.writePublicKey(dir, "rsa.pem", rsa.getPublic());
        jwksFile = JwtFixtures.write(
                dir.resolve("jwks.json"), JwtFixtures.jwks(JwtFixtures.publicJwk(rsa.getPublic(), "k1")));
    }

    private static JwtVerifier verifier(AuthPolicy.JwtPolicy policy, MutableClock clock) {
        try {
            return JwtVerifier.create(policy, clock, NO_REMOTE, null);
        } catch (JwtConfigException e) {
            throw new AssertionError(e.field() + ": " + e.getMessage(), e);
        }
    }

    private static JwtResult verify(JwtVerifier verifier, String token) {
        final CompletableFuture<JwtResult> stage = verifier.verify(token).toCompletableFuture();
        assertThat(stage).as("local keys complete inline").isDone();
        return stage.join();
    }

    private static String rs256(JWTClaimsSet claims) {
        return sign(signer(rsa), JWSAlgorithm.RS256, claims);
    }

    private static String rs256(JWSHeader header, JWTClaimsSet claims) {
        return sign(signer(rsa), header, claims);
    }

    enum Verifier {
        RS256_PUBLIC_KEY,
        HS256_AND_RS256_PUBLIC_KEY,
        RS256_JWKS_FILE
    }

    static Stream<Arguments> attacks() throws Exception {
        final String payload = Base64URL.encode(goodClaims().build().toString()).toString();
        final byte[] publicPem = Files.readAllBytes(rsaPublicPem);
        final String hsWithPublicKey = sign(
                new com.nimbusds.jose.crypto.MACSigner(publicPem),
                JWSAlgorithm.HS256,
                goodClaims().build());
        final String valid = rs256(goodClaims().build());
        final String[] parts = valid.split("\\.", -1);
        final char c = parts[1].charAt(20);
        final String tampered = parts[0] + "." + parts[1].substring(0, 20) + (c == 'A' ? 'B' : 'A')
                + parts[1].substring(21) + "." + parts[2];
        final EncryptedJWT jwe = new EncryptedJWT(
                new JWEHeader(JWEAlgorithm.RSA_OAEP_256, EncryptionMethod.A256GCM),
                goodClaims().build());
        jwe.encrypt(new RSAEncrypter((RSAPublicKey) rsa.getPublic()));
        final RSAKey attackerJwk = new RSAKey.Builder((RSAPublicKey) attacker.getPublic()).build();
        return Stream.of(
                row(
                        "alg none",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> "eyJhbGciOiJub25lIn0." + payload + ".",
                        Reason.TOKEN_INVALID,
                        "alg none"),
                row(
                        "HS256 MACed with the RSA public key, RS256 pinned",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> hsWithPublicKey,
                        Reason.TOKEN_INVALID,
                        "alg HS256 not allowed (expected: RS256)"),
                row(
                        "HS256 MACed with the RSA public key, HS256 and RS256 pinned",
                        Verifier.HS256_AND_RS256_PUBLIC_KEY,
                        () -> hsWithPublicKey,
                        Reason.TOKEN_INVALID,
                        "no key for alg HS256"),
                row(
                        "expired",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(goodClaims()
                                .expirationTime(Date.from(NOW.minus(Duration.ofHours(1))))
                                .build()),
                        Reason.TOKEN_EXPIRED,
                        "expired"),
                row(
                        "not yet valid",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(goodClaims()
                                .notBeforeTime(Date.from(NOW.plus(Duration.ofHours(1))))
                                .build()),
                        Reason.TOKEN_INVALID,
                        "nbf"),
                row(
                        "wrong iss",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(goodClaims().issuer("https://evil.example/").build()),
                        Reason.TOKEN_INVALID,
                        "iss does not match"),
                row(
                        "wrong aud",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(goodClaims().audience("other-api").build()),
                        Reason.TOKEN_INVALID,
                        "aud does not match"),
                row(
                        "missing required claim",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(goodClaims().claim("scope", null).build()),
                        Reason.CLAIM_DENIED,
                        "claim scope is missing"),
                row(
                        "scope lacking the word",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(goodClaims()
                                .claim("scope", "chat:read chat:writer")
                                .build()),
                        Reason.CLAIM_DENIED,
                        "claim scope lacks chat:write"),
                row(
                        "unknown kid",
                        Verifier.RS256_JWKS_FILE,
                        () -> rs256(
                                new JWSHeader.Builder(JWSAlgorithm.RS256)
                                        .keyID("k9")
                                        .build(),
                                goodClaims().build()),
                        Reason.TOKEN_INVALID,
                        "kid k9 is not in the key set"),
                row(
                        "tampered payload",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> tampered,
                        Reason.TOKEN_INVALID,
                        "signature does not verify"),
                row(
                        "foreign jku",
                        Verifier.RS256_JWKS_FILE,
                        () -> rs256(
                                new JWSHeader.Builder(JWSAlgorithm.RS256)
                                        .keyID("k1")
                                        .jwkURL(URI.create("https://evil.example/jwks.json"))
                                        .build(),
                                goodClaims().build()),
                        Reason.TOKEN_INVALID,
                        "header carries jku"),
                row(
                        "embedded jwk",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> sign(
                                signer(attacker),
                                new JWSHeader.Builder(JWSAlgorithm.RS256)
                                        .jwk(attackerJwk)
                                        .build(),
                                goodClaims().build()),
                        Reason.TOKEN_INVALID,
                        "header carries jwk"),
                row(
                        "x5u",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(
                                new JWSHeader.Builder(JWSAlgorithm.RS256)
                                        .x509CertURL(URI.create("https://evil.example/cert.pem"))
                                        .build(),
                                goodClaims().build()),
                        Reason.TOKEN_INVALID,
                        "header carries x5u"),
                row(
                        "x5c",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(
                                new JWSHeader.Builder(JWSAlgorithm.RS256)
                                        .x509CertChain(
                                                List.of(com.nimbusds.jose.util.Base64.encode(new byte[] {1, 2, 3})))
                                        .build(),
                                goodClaims().build()),
                        Reason.TOKEN_INVALID,
                        "header carries x5c"),
                row(
                        "truncated",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> valid.substring(0, valid.length() - 10),
                        Reason.TOKEN_INVALID,
                        "signature does not verify"),
                row(
                        "cut after the payload",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> parts[0] + "." + parts[1],
                        Reason.TOKEN_INVALID,
                        "3 dot-separated parts"),
                row(
                        "garbage",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> "this is not a token",
                        Reason.TOKEN_INVALID,
                        "not a signed JWT"),
                row(
                        "garbage in three parts",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> "%%%.&&&.***",
                        Reason.TOKEN_INVALID,
                        "base64url characters"),
                // nimbus' decoder skips these and the signature still verifies: refused before it.
                row(
                        "CR LF inside the signature",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> valid.substring(0, valid.length() - 4) + "\r\nX: " + valid.substring(valid.length() - 4),
                        Reason.TOKEN_INVALID,
                        "base64url characters"),
                row(
                        "padded",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> valid + "=",
                        Reason.TOKEN_INVALID,
                        "base64url characters"),
                row("empty", Verifier.RS256_PUBLIC_KEY, () -> "", Reason.TOKEN_INVALID, "empty"),
                row("JWE", Verifier.RS256_PUBLIC_KEY, jwe::serialize, Reason.TOKEN_INVALID, "JWE"),
                row(
                        "crit header",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(
                                new JWSHeader.Builder(JWSAlgorithm.RS256)
                                        .criticalParams(java.util.Set.of("exp"))
                                        .customParam("exp", 1)
                                        .build(),
                                goodClaims().build()),
                        Reason.TOKEN_INVALID,
                        "crit"),
                row(
                        "oversized",
                        Verifier.RS256_PUBLIC_KEY,
                        () -> rs256(
                                goodClaims().claim("pad", "x".repeat(20_000)).build()),
                        Reason.TOKEN_INVALID,
                        "longer than"));
    }

    private static Arguments row(String name, Verifier verifier, Supplier<String> token, Reason reason, String detail) {
        return Arguments.of(name, verifier, token, reason, detail);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("attacks")
    void refusesAttacksWithTheRightReasonAndNoTokenInTheDetail(
            String name, Verifier which, Supplier<String> token, Reason reason, String detail) throws Exception {
        final MutableClock clock = new MutableClock(NOW);
        final AuthPolicy.JwtPolicy policy =
                switch (which) {
                    case RS256_PUBLIC_KEY ->
                        policy("RS256").publicKey(rsaPublicPem).build();
                    case HS256_AND_RS256_PUBLIC_KEY ->
                        policy("HS256", "RS256").publicKey(rsaPublicPem).build();
                    case RS256_JWKS_FILE -> policy("RS256").jwksFile(jwksFile).build();
                };
        final String text = token.get();
        try (JwtVerifier verifier = verifier(policy, clock)) {
            final JwtResult result = verify(verifier, text);

            assertThat(result).isInstanceOf(JwtResult.Invalid.class);
            final JwtResult.Invalid invalid = (JwtResult.Invalid) result;
            assertThat(invalid.reason()).isEqualTo(reason);
            assertThat(invalid.detail()).contains(detail);
            assertNoTokenIn(invalid.detail(), text);
        }
    }

    private static void assertNoTokenIn(String detail, String token) {
        if (!token.isEmpty()) {
            assertThat(detail).doesNotContain(token);
        }
        for (String part : token.split("\\.", -1)) {
            if (part.length() >= 8) {
                assertThat(detail).doesNotContain(part);
            }
        }
        assertThat(detail).doesNotContain(SECRET_32).doesNotContain("alice");
    }

    static Stream<Arguments> validTokens() throws Exception {
        final KeyPair ec256 = JwtFixtures.ec("secp256r1");
        final KeyPair ec384 = JwtFixtures.ec("secp384r1");
        final KeyPair ed = JwtFixtures.ed25519();
        final TestCerts.Authority ca = TestCerts.authority(dir.resolve("ca-valid"), "test-ca");
        final TestCerts.Issued rsaCert =
                ca.issue(dir, "rsa-cert", List.of("id.example.com"), TestCerts.KeyType.RSA, TestCerts.KeyFormat.PKCS8);
        final TestCerts.Issued ecCert =
                ca.issue(dir, "ec-cert", List.of("id.example.com"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final TestCerts.Issued edCert = ca.issue(
                dir, "ed-cert", List.of("id.example.com"), TestCerts.KeyType.ED25519, TestCerts.KeyFormat.PKCS8);
        final Path mixedJwks = JwtFixtures.write(
                dir.resolve("mixed-jwks.json"),
                JwtFixtures.jwks(
                        JwtFixtures.publicJwk(rsa.getPublic(), "r1"),
                        JwtFixtures.publicJwk(ec256.getPublic(), "e1"),
                        JwtFixtures.publicJwk(ed.getPublic(), "d1")));
        return Stream.of(
                valid("HS256 secret", policy("HS256").secret(SECRET_32), signer(SECRET_32), JWSAlgorithm.HS256, null),
                valid("HS384 secret", policy("HS384").secret(SECRET_48), signer(SECRET_48), JWSAlgorithm.HS384, null),
                valid("HS512 secret", policy("HS512").secret(SECRET_64), signer(SECRET_64), JWSAlgorithm.HS512, null),
                valid("RS256 SPKI", policy("RS256").publicKey(rsaPublicPem), signer(rsa), JWSAlgorithm.RS256, null),
                valid("PS256 SPKI", policy("PS256").publicKey(rsaPublicPem), signer(rsa), JWSAlgorithm.PS256, null),
                valid(
                        "RS256 certificate",
                        policy("RS256").publicKey(rsaCert.certificate()),
                        signer(rsaCert.keyPair()),
                        JWSAlgorithm.RS256,
                        "ignored-kid"),
                valid(
                        "ES256 SPKI",
                        policy("ES256").publicKey(JwtFixtures.writePublicKey(dir, "ec256.pem", ec256.getPublic())),
                        signer(ec256),
                        JWSAlgorithm.ES256,
                        null),
                valid(
                        "ES384 SPKI",
                        policy("ES384").publicKey(JwtFixtures.writePublicKey(dir, "ec384.pem", ec384.getPublic())),
                        signer(ec384),
                        JWSAlgorithm.ES384,
                        null),
                valid(
                        "ES256 certificate",
                        policy("ES256").publicKey(ecCert.certificate()),
                        signer(ecCert.keyPair()),
                        JWSAlgorithm.ES256,
                        null),
                valid(
                        "EdDSA SPKI",
                        policy("EdDSA").publicKey(JwtFixtures.writePublicKey(dir, "ed.pem", ed.getPublic())),
                        signer(ed),
                        JWSAlgorithm.EdDSA,
                        null),
                valid(
                        "EdDSA certificate",
                        policy("EdDSA").publicKey(edCert.certificate()),
                        signer(edCert.keyPair()),
                        JWSAlgorithm.EdDSA,
                        null),
                valid(
                        "RS256 jwksFile",
                        policy("RS256", "ES256", "EdDSA").jwksFile(mixedJwks),
                        signer(rsa),
                        JWSAlgorithm.RS256,
                        "r1"),
                valid(
                        "ES256 jwksFile",
                        policy("RS256", "ES256", "EdDSA").jwksFile(mixedJwks),
                        signer(ec256),
                        JWSAlgorithm.ES256,
                        "e1"),
                valid(
                        "EdDSA jwksFile",
                        policy("RS256", "ES256", "EdDSA").jwksFile(mixedJwks),
                        signer(ed),
                        JWSAlgorithm.EdDSA,
                        "d1"),
                valid(
                        "ES256 jwksFile, no kid",
                        policy("RS256", "ES256", "EdDSA").jwksFile(mixedJwks),
                        signer(ec256),
                        JWSAlgorithm.ES256,
                        null));
    }

    private static Arguments valid(
            String name, JwtFixtures.Policy policy, com.nimbusds.jose.JWSSigner signer, JWSAlgorithm alg, String kid) {
        return Arguments.of(name, policy.build(), signer, alg, kid);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("validTokens")
    void acceptsValidTokensAndPassesClaimsToThePrincipal(
            String name,
            AuthPolicy.JwtPolicy policy,
            com.nimbusds.jose.JWSSigner signer,
            JWSAlgorithm alg,
            String kid) {
        final String token = sign(
                signer,
                new JWSHeader.Builder(alg).keyID(kid).build(),
                goodClaims().claim("room", "lobby").build());
        try (JwtVerifier verifier = verifier(policy, new MutableClock(NOW))) {
            final JwtResult result = verify(verifier, token);

            assertThat(result).isInstanceOf(JwtResult.Valid.class);
            final Principal principal = ((JwtResult.Valid) result).principal();
            assertThat(principal.subject()).isEqualTo("alice");
            assertThat(principal.claims()).containsEntry("room", "lobby").containsEntry("iss", ISSUER);
            assertThat(principal.claimText("aud")).isEqualTo(AUDIENCE);
            assertThat(principal.expiresAt()).contains(NOW.plus(Duration.ofMinutes(10)));
        }
    }

    @Test
    void spaceSeparatedClaimHoldsWordsNotEmptyStrings() {
        assertThat(JwtVerifier.satisfies("read write", "write")).isTrue();
        assertThat(JwtVerifier.satisfies("read\twrite ", "write")).isTrue();
        assertThat(JwtVerifier.satisfies("readwrite", "read")).isFalse();
        assertThat(JwtVerifier.satisfies("", "")).as("equal as a whole").isTrue();
        assertThat(JwtVerifier.satisfies("admin ", "")).isFalse();
        assertThat(JwtVerifier.satisfies(" admin", "")).isFalse();
    }

    @Test
    void signatureFromAnotherKeyDoesNotVerify() {
        final String forged =
                sign(signer(attacker), JWSAlgorithm.RS256, goodClaims().build());
        try (JwtVerifier verifier =
                verifier(policy("RS256").publicKey(rsaPublicPem).build(), new MutableClock(NOW))) {
            assertThat(verify(verifier, forged))
                    .isEqualTo(new JwtResult.Invalid(Reason.TOKEN_INVALID, "signature does not verify"));
        }
    }

    static Stream<Arguments> requireRules() {
        return Stream.of(
                Arguments.of("equals", Map.of("role", "admin"), "admin", true),
                Arguments.of("equals, other value", Map.of("role", "admin"), "administrator", false),
                Arguments.of("array contains", Map.of("groups", "ops"), List.of("dev", "ops"), true),
                Arguments.of("array lacks", Map.of("groups", "ops"), List.of("dev", "opsx"), false),
                Arguments.of(
                        "space-separated contains", Map.of("scope", "chat:write"), "chat:read chat:write admin", true),
                Arguments.of("space-separated lacks", Map.of("scope", "chat:write"), "chat:read chat:writes", false),
                Arguments.of("boolean", Map.of("verified", "true"), true, true),
                Arguments.of("number", Map.of("tier", "2"), 2, true));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("requireRules")
    void requireMatchesEqualsArrayOrSpaceSeparatedWords(
            String name, Map<String, String> rule, Object value, boolean passes) {
        final String claim = rule.keySet().iterator().next();
        final String token = sign(
                signer(SECRET_32),
                JWSAlgorithm.HS256,
                goodClaims().claim(claim, value).build());
        try (JwtVerifier verifier =
                verifier(policy("HS256").secret(SECRET_32).require(rule).build(), new MutableClock(NOW))) {
            final JwtResult result = verify(verifier, token);

            if (passes) {
                assertThat(result).isInstanceOf(JwtResult.Valid.class);
            } else {
                assertThat(result).isInstanceOf(JwtResult.Invalid.class);
                assertThat(((JwtResult.Invalid) result).reason()).isEqualTo(Reason.CLAIM_DENIED);
                assertThat(((JwtResult.Invalid) result).detail())
                        .startsWith("claim " + claim + " ")
                        .doesNotContain(value.toString());
            }
        }
    }

    @Test
    void tokenExpiredTenSecondsAgoPassesWithSkew30sAndFailsWith5s() {
        final String token = sign(
                signer(SECRET_32),
                JWSAlgorithm.HS256,
                goodClaims().expirationTime(Date.from(NOW.minusSeconds(10))).build());
        try (JwtVerifier lenient = verifier(
                        policy("HS256")
                                .secret(SECRET_32)
                                .clockSkew(Duration.ofSeconds(30))
                                .build(),
                        new MutableClock(NOW));
                JwtVerifier strict = verifier(
                        policy("HS256")
                                .secret(SECRET_32)
                                .clockSkew(Duration.ofSeconds(5))
                                .build(),
                        new MutableClock(NOW))) {
            assertThat(verify(lenient, token)).isInstanceOf(JwtResult.Valid.class);
            assertThat(verify(strict, token))
                    .extracting(r -> ((JwtResult.Invalid) r).reason())
                    .isEqualTo(Reason.TOKEN_EXPIRED);
        }
    }

    @Test
    void tokenWithoutExpIsRefusedUnlessAllowNoExpiry() {
        final String token = sign(
                signer(SECRET_32),
                JWSAlgorithm.HS256,
                goodClaims().expirationTime(null).build());
        try (JwtVerifier strict = verifier(policy("HS256").secret(SECRET_32).build(), new MutableClock(NOW));
                JwtVerifier lenient = verifier(
                        policy("HS256").secret(SECRET_32).allowNoExpiry().build(), new MutableClock(NOW))) {
            final JwtResult refused = verify(strict, token);
            assertThat(refused)
                    .isEqualTo(new JwtResult.Invalid(
                            Reason.TOKEN_INVALID,
                            "exp is missing (expected: an expiry; "
                                    + "auth.jwt.allowNoExpiry: true accepts tokens without one)"));

            final JwtResult result = verify(lenient, token);
            assertThat(result).isInstanceOf(JwtResult.Valid.class);
            assertThat(((JwtResult.Valid) result).principal().expiresAt()).isEmpty();
        }
    }

    /**
     * Time claims nimbus would turn into a date by {@code seconds * 1000} without an overflow check:
     * {@code nbf: 1e30} came out as 1969-12-31T23:59:59Z, in the past, and the token passed.
     */
    static Stream<Arguments> timeClaimsOutOfRange() {
        final long exp = NOW.plus(Duration.ofMinutes(10)).getEpochSecond();
        final long now = NOW.getEpochSecond();
        return Stream.of(
                Arguments.of("nbf", "\"nbf\":1e30,\"exp\":" + exp),
                Arguments.of("nbf", "\"nbf\":9223372036854775807,\"exp\":" + exp),
                Arguments.of("nbf", "\"nbf\":-1e30,\"exp\":" + exp),
                Arguments.of("exp", "\"exp\":1e30"),
                Arguments.of("exp", "\"exp\":99999999999999999999"),
                Arguments.of("exp", "\"exp\":-1"),
                Arguments.of("exp", "\"exp\":253402300800"),
                Arguments.of("iat", "\"iat\":1e300,\"exp\":" + exp),
                Arguments.of("iat", "\"iat\":-" + now + ",\"exp\":" + exp));
    }

    @ParameterizedTest(name = "{1}")
    @MethodSource("timeClaimsOutOfRange")
    void timeClaimOutsideTheRepresentableRangeIsRefusedNamingTheClaim(String claim, String times) throws Exception {
        final String json = "{\"sub\":\"alice\",\"iss\":\"" + ISSUER + "\",\"aud\":\"" + AUDIENCE
                + "\",\"scope\":\"chat:write\"," + times + "}";
        final JWSObject jws = new JWSObject(new JWSHeader(JWSAlgorithm.HS256), new Payload(json));
        jws.sign(signer(SECRET_32));
        try (JwtVerifier verifier = verifier(policy("HS256").secret(SECRET_32).build(), new MutableClock(NOW))) {
            assertThat(verify(verifier, jws.serialize()))
                    .isEqualTo(new JwtResult.Invalid(
                            Reason.TOKEN_INVALID,
                            claim
                                    + " is outside the representable range (expected: "
                                    + "seconds since 1970, at most 253402300799,"
                                    + " the end of year 9999)"));
        }
    }

    @Test
    void timeClaimsAtTheEdgesOfTheRangeAndWithFractionsAreRead() throws Exception {
        final String json = "{\"sub\":\"alice\",\"iss\":\"" + ISSUER + "\",\"aud\":\"" + AUDIENCE
                + "\",\"scope\":\"chat:write\",\"iat\":0,\"nbf\":" + (NOW.getEpochSecond() - 1) + ".5"
                + ",\"exp\":253402300799}";
        final JWSObject jws = new JWSObject(new JWSHeader(JWSAlgorithm.HS256), new Payload(json));
        jws.sign(signer(SECRET_32));
        try (JwtVerifier verifier = verifier(policy("HS256").secret(SECRET_32).build(), new MutableClock(NOW))) {
            final JwtResult result = verify(verifier, jws.serialize());
            assertThat(result).isInstanceOf(JwtResult.Valid.class);
            assertThat(((JwtResult.Valid) result).principal().expiresAt())
                    .contains(Instant.parse("9999-12-31T23:59:59Z"));
        }
    }

    @Test
    void cacheHitSkipsTheSignatureCheckAndStillExpires() {
        final MutableClock clock = new MutableClock(NOW);
        final String token = sign(signer(rsa), JWSAlgorithm.RS256, goodClaims().build()); // exp NOW + 10 min
        try (JwtVerifier verifier =
                verifier(policy("RS256").publicKey(rsaPublicPem).build(), clock)) {
            assertThat(verify(verifier, token)).isInstanceOf(JwtResult.Valid.class);
            assertThat(verifier.signatureChecks()).isEqualTo(1);

            for (int i = 0; i < 50; i++) {
                assertThat(verify(verifier, token)).isInstanceOf(JwtResult.Valid.class);
            }
            assertThat(verifier.signatureChecks())
                    .as("cache hits verify nothing")
                    .isEqualTo(1);

            clock.advance(Duration.ofMinutes(10).plusSeconds(29)); // within clockSkew 30s
            assertThat(verify(verifier, token)).isInstanceOf(JwtResult.Valid.class);
            clock.advance(Duration.ofSeconds(1));
            final JwtResult late = verify(verifier, token);
            assertThat(late).isInstanceOf(JwtResult.Invalid.class);
            assertThat(((JwtResult.Invalid) late).reason()).isEqualTo(Reason.TOKEN_EXPIRED);
            assertThat(verifier.signatureChecks()).isEqualTo(1);
        }
    }

    @Test
    void cacheKeepsClaimDeniedTokensDenied() {
        final String token = sign(
                signer(SECRET_32),
                JWSAlgorithm.HS256,
                goodClaims().claim("scope", "chat:read").build());
        try (JwtVerifier verifier = verifier(policy("HS256").secret(SECRET_32).build(), new MutableClock(NOW))) {
            for (int i = 0; i < 3; i++) {
                assertThat(verify(verifier, token))
                        .isEqualTo(new JwtResult.Invalid(Reason.CLAIM_DENIED, "claim scope lacks chat:write"));
            }
            assertThat(verifier.signatureChecks()).isEqualTo(1);
        }
    }

    @Test
    void cacheIsBoundedAndKeepsWorkingWhenFull() throws Exception {
        try (JwtVerifier verifier = JwtVerifier.create(
                policy("HS256").secret(SECRET_32).build(),
                new MutableClock(NOW),
                NO_REMOTE,
                null,
                JwtVerifier.RemoteTiming.DEFAULT,
                16)) {
            for (int i = 0; i < 100; i++) {
                final String token = sign(
                        signer(SECRET_32),
                        JWSAlgorithm.HS256,
                        goodClaims().jwtID("t" + i).build());
                assertThat(verify(verifier, token)).isInstanceOf(JwtResult.Valid.class);
            }
            assertThat(verifier.signatureChecks()).isEqualTo(100);
        }
        final VerifiedTokenCache cache = new VerifiedTokenCache(16, Duration.ofMinutes(5));
        final Principal p = new Principal("a", Map.of(), java.util.Optional.empty());
        for (int i = 0; i < 100; i++) {
            cache.put(VerifiedTokenCache.key("t" + i), p, null, NOW);
            assertThat(cache.size()).isLessThanOrEqualTo(16);
        }
    }

    @Test
    void cacheKeyIsAHashNotTheToken() {
        final String token =
                sign(signer(SECRET_32), JWSAlgorithm.HS256, goodClaims().build());
        assertThat(VerifiedTokenCache.key(token)).hasSize(43).doesNotContain(token.substring(0, 10));
    }

    // --- configuration errors, reported at creation -------------------------------------------------

    static Stream<Arguments> badConfigs() {
        final Path garbagePem = JwtFixtures.write(
                dir.resolve("garbage.pem"), "-----BEGIN PUBLIC KEY-----\nAAAAAAAAAAAA\n-----END PUBLIC KEY-----\n");
        final Path notPem = JwtFixtures.write(dir.resolve("not.pem"), "hello\n");
        final Path privatePem = JwtFixtures.writePrivateKey(dir, "private.pem", rsa);
        final Path ecPem = JwtFixtures.writePublicKey(
                dir, "ec-only.pem", JwtFixtures.ec("secp256r1").getPublic());
        final Path garbageJwks = JwtFixtures.write(dir.resolve("garbage-jwks.json"), "{\"keys\": 42");
        final Path emptyJwks = JwtFixtures.write(dir.resolve("empty-jwks.json"), "{\"keys\": []}");
        final Path ecJwks = JwtFixtures.write(
                dir.resolve("ec-jwks.json"),
                JwtFixtures.jwks(
                        JwtFixtures.publicJwk(JwtFixtures.ec("secp256r1").getPublic(), "e1")));
        return Stream.of(
                Arguments.of(
                        "HS256 secret of 31 bytes", policy("HS256").secret(SECRET_32.substring(1)), "secret", "HS256"),
                Arguments.of(
                        "HS512 secret of 48 bytes", policy("HS256", "HS512").secret(SECRET_48), "secret", "HS512"),
                Arguments.of("RS256 with a secret", policy("RS256").secret(SECRET_32), "algorithms", "RS256"),
                Arguments.of(
                        "PEM with garbage inside",
                        policy("RS256").publicKey(garbagePem),
                        "publicKey",
                        "BEGIN PUBLIC KEY"),
                Arguments.of("not PEM", policy("RS256").publicKey(notPem), "publicKey", "BEGIN PUBLIC KEY"),
                Arguments.of(
                        "private key as publicKey", policy("RS256").publicKey(privatePem), "publicKey", "private key"),
                Arguments.of("EC key with RS256", policy("RS256").publicKey(ecPem), "algorithms", "ES256"),
                Arguments.of("jwksFile garbage", policy("RS256").jwksFile(garbageJwks), "jwksFile", "not a JWK set"),
                Arguments.of("jwksFile empty", policy("RS256").jwksFile(emptyJwks), "jwksFile", "no keys"),
                Arguments.of(
                        "jwksFile EC key with RS256", policy("RS256").jwksFile(ecJwks), "jwksFile", "no key for RS256"),
                Arguments.of(
                        "jwksUri with HS256 only",
                        policy("HS256").jwksUri(URI.create("https://id.example.com/jwks")),
                        "algorithms",
                        "HMAC"),
                Arguments.of("unsupported algorithm", policy("ES256K").publicKey(ecPem), "algorithms", "ES256K"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badConfigs")
    void refusesConfigurationsThatCannotWork(String name, JwtFixtures.Policy policy, String field, String message) {
        assertThatThrownBy(() -> JwtVerifier.create(policy.build(), new MutableClock(NOW), NO_REMOTE, null))
                .isInstanceOfSatisfying(JwtConfigException.class, e -> {
                    assertThat(e.field()).isEqualTo(field);
                    assertThat(e.getMessage())
                            .contains(message)
                            .contains("expected")
                            .doesNotContain(SECRET_32.substring(1));
                });
    }

    @Test
    void jwksUriIsNotFetchedAtCreation() throws Exception {
        // Nothing listens on port 9 of 127.0.0.1 in a test environment; creation must not care.
        try (JwtVerifier verifier = JwtVerifier.create(
                policy("RS256").jwksUri(URI.create("https://127.0.0.1:9/jwks")).build(),
                new MutableClock(NOW),
                Runnable::run,
                null)) {
            assertThat(verifier).isNotNull();
        }
    }

    @Test
    void tokenWithoutKidIsTriedAgainstAFewKeysOnly() {
        final JWK[] many = new JWK[6];
        for (int i = 0; i < many.length; i++) {
            many[i] = JwtFixtures.publicJwk(
                    i == 0 ? rsa.getPublic() : JwtFixtures.rsa().getPublic(), "r" + i);
        }
        final Path bigJwks = JwtFixtures.write(dir.resolve("big-jwks.json"), JwtFixtures.jwks(many));
        try (JwtVerifier verifier = verifier(policy("RS256").jwksFile(bigJwks).build(), new MutableClock(NOW))) {
            final JwtResult.Invalid result =
                    (JwtResult.Invalid) verify(verifier, rs256(goodClaims().build()));
            assertThat(result.detail()).startsWith("no kid, and the key set has 6 keys");
            assertThat(verifier.signatureChecks()).isZero();
            assertThat(verify(
                            verifier,
                            rs256(
                                    new JWSHeader.Builder(JWSAlgorithm.RS256)
                                            .keyID("r0")
                                            .build(),
                                    goodClaims().build())))
                    .isInstanceOf(JwtResult.Valid.class);
        }
    }

    @Test
    void detailNeverHoldsTheTokenEvenForUnprintableHeaders() {
        final String kid = "k\u0000\"<script>" + "x".repeat(100);
        final String token = sign(
                signer(rsa),
                new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(kid).build(),
                goodClaims().build());
        try (JwtVerifier verifier = verifier(policy("RS256").jwksFile(jwksFile).build(), new MutableClock(NOW))) {
            final JwtResult.Invalid result = (JwtResult.Invalid) verify(verifier, token);
            assertThat(result.detail()).isEqualTo("kid (unprintable) is not in the key set");
        }
    }

    @Test
    void hs256MacedWithTheDerPublicKeyIsRefusedToo() throws Exception {
        final byte[] der = ((RSAPublicKey) rsa.getPublic()).getEncoded();
        final String token = sign(
                new com.nimbusds.jose.crypto.MACSigner(der),
                JWSAlgorithm.HS256,
                goodClaims().build());
        try (JwtVerifier verifier =
                verifier(policy("HS256", "RS256").publicKey(rsaPublicPem).build(), new MutableClock(NOW))) {
            assertThat(((JwtResult.Invalid) verify(verifier, token)).reason()).isEqualTo(Reason.TOKEN_INVALID);
        }
    }

    @Test
    void instantNowIsNotUsedForTime() {
        // A token valid only in the test clock's world (2026) proves exp/nbf use the injected Clock.
        final MutableClock clock = new MutableClock(Instant.parse("2040-01-01T00:00:00Z"));
        final String token =
                sign(signer(SECRET_32), JWSAlgorithm.HS256, goodClaims().build());
        try (JwtVerifier verifier = verifier(policy("HS256").secret(SECRET_32).build(), clock)) {
            assertThat(((JwtResult.Invalid) verify(verifier, token)).reason()).isEqualTo(Reason.TOKEN_EXPIRED);
        }
    }
}
