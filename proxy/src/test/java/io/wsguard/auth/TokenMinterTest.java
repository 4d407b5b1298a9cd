package io.wsguard.auth;

import static io.wsguard.auth.JwtFixtures.AUDIENCE;
import static io.wsguard.auth.JwtFixtures.ISSUER;
import static io.wsguard.auth.JwtFixtures.NOW;
import static io.wsguard.auth.JwtFixtures.SECRET_32;
import static io.wsguard.auth.JwtFixtures.policy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.nimbusds.jwt.SignedJWT;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.Secret;
import io.wsguard.testing.MutableClock;
import io.wsguard.testing.TestCerts;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class TokenMinterTest {

    @TempDir
    static Path dir;

    static KeyPair rsa;
    static Path rsaKey;

    @BeforeAll
    static void keys() {
        rsa = JwtFixtures.rsa();
        rsaKey = JwtFixtures.writePrivateKey(dir, "rsa.key", rsa);
    }

    private static TokenMinter.Options options(Optional<Secret> secret, Optional<Path> key, Optional<String> alg) {
        return new TokenMinter.Options(
                secret,
                key,
                alg,
                Optional.of("k1"),
                Optional.of("alice"),
                Optional.of(ISSUER),
                List.of(AUDIENCE, "other-api"),
                Duration.ofMinutes(15),
                Map.of("scope", "chat:read chat:write", "room", "lobby"));
    }

    static Stream<Arguments> keyTypes() {
        final KeyPair ec256 = JwtFixtures.ec("secp256r1");
        final KeyPair ec384 = JwtFixtures.ec("secp384r1");
        final KeyPair ec521 = JwtFixtures.ec("secp521r1");
        final KeyPair ed = JwtFixtures.ed25519();
        return Stream.of(
                Arguments.of("RSA", rsa, Optional.empty(), "RS256"),
                Arguments.of("RSA, PS384 asked for", rsa, Optional.of("PS384"), "PS384"),
                Arguments.of("EC P-256", ec256, Optional.empty(), "ES256"),
                Arguments.of("EC P-384", ec384, Optional.empty(), "ES384"),
                Arguments.of("EC P-521", ec521, Optional.empty(), "ES512"),
                Arguments.of("Ed25519", ed, Optional.empty(), "EdDSA"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("keyTypes")
    void mintedTokensVerifyWithTheMatchingPublicKey(String name, KeyPair keys, Optional<String> alg, String expectedAlg)
            throws Exception {
        final Path key = JwtFixtures.writePrivateKey(dir, expectedAlg + "-" + name.length() + ".key", keys);
        final Path pub = JwtFixtures.writePublicKey(dir, expectedAlg + "-" + name.length() + ".pem", keys.getPublic());

        final String token = TokenMinter.mint(options(Optional.empty(), Optional.of(key), alg), new MutableClock(NOW));

        final SignedJWT parsed = SignedJWT.parse(token);
        assertThat(parsed.getHeader().getAlgorithm().getName()).isEqualTo(expectedAlg);
        assertThat(parsed.getHeader().getKeyID()).isEqualTo("k1");
        try (JwtVerifier verifier = JwtVerifier.create(
                policy(expectedAlg).publicKey(pub).build(), new MutableClock(NOW), Runnable::run, null)) {
            assertValid(verifier, token);
        }
    }

    @Test
    void mintedSecretTokenVerifies() throws Exception {
        final String token = TokenMinter.mint(
                options(Optional.of(new Secret(SECRET_32)), Optional.empty(), Optional.empty()), new MutableClock(NOW));

        assertThat(SignedJWT.parse(token).getHeader().getAlgorithm().getName()).isEqualTo("HS256");
        final AuthPolicy.JwtPolicy policy = policy("HS256").secret(SECRET_32).build();
        try (JwtVerifier verifier = JwtVerifier.create(policy, new MutableClock(NOW), Runnable::run, null)) {
            assertValid(verifier, token);
        }
    }

    @Test
    void mintedTokenWithTheDevCertsKeyVerifiesAgainstItsCertificate() throws Exception {
        final TestCerts.Issued issued = TestCerts.authority(dir.resolve("ca"), "ca")
                .issue(dir, "signer", List.of("id.example.com"), TestCerts.KeyType.EC, TestCerts.KeyFormat.SEC1);

        final String token = TokenMinter.mint(
                options(Optional.empty(), Optional.of(issued.privateKey()), Optional.empty()), new MutableClock(NOW));

        try (JwtVerifier verifier = JwtVerifier.create(
                policy("ES256").publicKey(issued.certificate()).build(), new MutableClock(NOW), Runnable::run, null)) {
            assertValid(verifier, token);
        }
    }

    private static void assertValid(JwtVerifier verifier, String token) {
        final JwtResult result = verifier.verify(token).toCompletableFuture().join();
        assertThat(result).isInstanceOf(JwtResult.Valid.class);
        final Principal principal = ((JwtResult.Valid) result).principal();
        assertThat(principal.subject()).isEqualTo("alice");
        assertThat(principal.claims()).containsEntry("room", "lobby").containsEntry("iss", ISSUER);
        assertThat(principal.claimText("aud")).isEqualTo(AUDIENCE + " other-api");
        assertThat(principal.expiresAt()).contains(NOW.plus(Duration.ofMinutes(15)));
        assertThat(principal.claimText("iat")).isEqualTo(Long.toString(NOW.getEpochSecond()));
    }

    @Test
    void refusesAShortSecretWithoutPrintingIt() {
        final String secret = "too-short-but-secret";
        assertThatThrownBy(() -> TokenMinter.mint(
                        TokenMinter.Options.withSecret(secret, "alice", Duration.ofMinutes(5)), new MutableClock(NOW)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least 32 bytes")
                .message()
                .doesNotContain(secret);
    }

    @Test
    void refusesHs512WithA32ByteSecret() {
        assertThatThrownBy(() -> TokenMinter.mint(
                        new TokenMinter.Options(
                                Optional.of(new Secret(SECRET_32)),
                                Optional.empty(),
                                Optional.of("HS512"),
                                Optional.empty(),
                                Optional.empty(),
                                Optional.empty(),
                                List.of(),
                                Duration.ofMinutes(1),
                                Map.of()),
                        new MutableClock(NOW)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least 64 bytes");
    }

    static Stream<Arguments> badKeys() {
        return Stream.of(
                Arguments.of("missing file", dir.resolve("nope.key"), Optional.empty(), "does not exist"),
                Arguments.of(
                        "not PEM",
                        JwtFixtures.write(dir.resolve("text.key"), "hello\n"),
                        Optional.empty(),
                        "holds no private key"),
                Arguments.of(
                        "a public key",
                        JwtFixtures.writePublicKey(dir, "public.key", rsa.getPublic()),
                        Optional.empty(),
                        "holds no private key"),
                Arguments.of("RSA key, ES256 asked for", rsaKey, Optional.of("ES256"), "does not fit"),
                Arguments.of("RSA key, HS256 asked for", rsaKey, Optional.of("HS256"), "does not fit"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badKeys")
    void refusesUnusableKeysWithAClearMessage(String name, Path key, Optional<String> alg, String message) {
        assertThatThrownBy(
                        () -> TokenMinter.mint(options(Optional.empty(), Optional.of(key), alg), new MutableClock(NOW)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(message)
                .hasMessageContaining("expected");
    }

    @Test
    void refusesAnEd448KeyByItsCurveBeforeSigning() throws Exception {
        // The JDK calls Ed448 keys "EdDSA" too; the Ed25519 signer must never be handed one.
        final KeyPair keys = KeyPairGenerator.getInstance("Ed448").generateKeyPair();
        final Path ed448 = JwtFixtures.writePrivateKey(dir, "ed448.key", keys);

        assertThatThrownBy(() -> TokenMinter.mint(
                        options(Optional.empty(), Optional.of(ed448), Optional.empty()), new MutableClock(NOW)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is a Ed448 key")
                .hasMessageContaining("expected: RSA, EC or Ed25519");
    }

    @Test
    void optionsNeedExactlyOneKeySourceAndAPositiveTtl() {
        assertThatThrownBy(() -> options(Optional.empty(), Optional.empty(), Optional.empty()))
                .hasMessageContaining("neither");
        assertThatThrownBy(() -> options(Optional.of(new Secret(SECRET_32)), Optional.of(rsaKey), Optional.empty()))
                .hasMessageContaining("both");
        assertThatThrownBy(() -> TokenMinter.Options.withKey(rsaKey, "alice", Duration.ZERO))
                .hasMessageContaining("ttl");
    }

    @Test
    void claimArgumentsSplitAtTheFirstEqualsAndRegisteredNamesAreRefused() {
        assertThat(TokenMinter.parseClaim("scope=chat:read chat:write"))
                .isEqualTo(Map.entry("scope", "chat:read chat:write"));
        assertThat(TokenMinter.parseClaim("q=a=b")).isEqualTo(Map.entry("q", "a=b"));
        assertThat(TokenMinter.parseClaim("empty=")).isEqualTo(Map.entry("empty", ""));
        assertThatThrownBy(() -> TokenMinter.parseClaim("=x")).hasMessageContaining("NAME=VALUE");
        assertThatThrownBy(() -> TokenMinter.parseClaim("novalue")).hasMessageContaining("NAME=VALUE");
        assertThatThrownBy(() -> new TokenMinter.Options(
                        Optional.of(new Secret(SECRET_32)),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        Optional.empty(),
                        List.of(),
                        Duration.ofMinutes(1),
                        Map.of("exp", "1")))
                .hasMessageContaining("'exp'");
    }
}
