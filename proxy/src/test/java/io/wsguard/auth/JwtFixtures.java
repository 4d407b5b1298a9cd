package io.wsguard.auth;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSSigner;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.Secret;
import io.wsguard.testing.TestCerts;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.RSAPrivateKey;
import java.security.spec.ECGenParameterSpec;
import java.text.ParseException;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Real keys, real signed tokens and policies for the auth tests. */
final class JwtFixtures {

    static final Instant NOW = Instant.parse("2026-11-23T10:00:00Z");
    static final String ISSUER = "https://id.example.com/";
    static final String AUDIENCE = "chat-api";
    static final String SECRET_32 = "0123456789abcdef0123456789abcdef";
    static final String SECRET_48 = SECRET_32 + "0123456789abcdef";
    static final String SECRET_64 = SECRET_48 + "0123456789abcdef";

    private JwtFixtures() {}

    static KeyPair rsa() {
        return generate("RSA", null);
    }

    static KeyPair ec(String curve) {
        return generate("EC", curve);
    }

    static KeyPair ed25519() {
        return generate("Ed25519", null);
    }

    private static KeyPair generate(String algorithm, String curve) {
        try {
            final KeyPairGenerator gen = KeyPairGenerator.getInstance(algorithm);
            if (curve != null) {
                gen.initialize(new ECGenParameterSpec(curve));
            } else if (algorithm.equals("RSA")) {
                gen.initialize(2048);
            }
            return gen.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code BEGIN PUBLIC KEY} (SPKI). */
    static Path writePublicKey(Path dir, String name, PublicKey key) {
        return write(
                dir.resolve(name),
                "-----BEGIN PUBLIC KEY-----\n"
                        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                                .encodeToString(key.getEncoded())
                        + "\n-----END PUBLIC KEY-----\n");
    }

    /** {@code BEGIN PRIVATE KEY} (PKCS#8). */
    static Path writePrivateKey(Path dir, String name, KeyPair keys) {
        final Path file = dir.resolve(name);
        try {
            TestCerts.writeKey(file, keys, TestCerts.KeyFormat.PKCS8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    static Path write(Path file, String text) {
        try {
            Files.writeString(file, text, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    /** The public JWK of a key pair with a kid, as JSON for a JWK set. */
    static JWK publicJwk(PublicKey key, String kid) {
        try {
            final Map<String, Object> json =
                    new LinkedHashMap<>(JwtKeys.toJwk(key, "test", "test").toJSONObject());
            json.put("kid", kid);
            return JWK.parse(json);
        } catch (JwtConfigException | ParseException e) {
            throw new IllegalStateException(e);
        }
    }

    static String jwks(JWK... keys) {
        final StringBuilder out = new StringBuilder("{\"keys\":[");
        for (int i = 0; i < keys.length; i++) {
            out.append(i == 0 ? "" : ",").append(keys[i].toJSONString());
        }
        return out.append("]}").toString();
    }

    static JWSSigner signer(KeyPair keys) {
        try {
            if (keys.getPrivate() instanceof RSAPrivateKey rsa) {
                return new RSASSASigner(rsa);
            }
            if (keys.getPrivate() instanceof ECPrivateKey ec) {
                return new ECDSASigner(ec);
            }
            return new JwtKeys.Ed25519JdkSigner(keys.getPrivate());
        } catch (JOSEException e) {
            throw new IllegalStateException(e);
        }
    }

    static JWSSigner signer(String secret) {
        try {
            return new MACSigner(secret.getBytes(StandardCharsets.UTF_8));
        } catch (JOSEException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Claims that pass the default policy: sub alice, the issuer, the audience, exp in 10 minutes, scope chat:write.
     */
    static JWTClaimsSet.Builder goodClaims() {
        return new JWTClaimsSet.Builder()
                .subject("alice")
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .issueTime(Date.from(NOW))
                .expirationTime(Date.from(NOW.plus(Duration.ofMinutes(10))))
                .claim("scope", "chat:read chat:write");
    }

    static String sign(JWSSigner signer, JWSHeader header, JWTClaimsSet claims) {
        final SignedJWT jwt = new SignedJWT(header, claims);
        try {
            jwt.sign(signer);
        } catch (JOSEException e) {
            throw new IllegalStateException(e);
        }
        return jwt.serialize();
    }

    static String sign(JWSSigner signer, JWSAlgorithm alg, JWTClaimsSet claims) {
        return sign(signer, new JWSHeader(alg), claims);
    }

    /** A policy with the test issuer and audience, {@code require: {scope: chat:write}} and clockSkew 30s. */
    static Policy policy(String... algorithms) {
        return new Policy(List.of(algorithms));
    }

    /** A small builder over {@link AuthPolicy.JwtPolicy}, whose record has twelve components. */
    static final class Policy {
        private final List<String> algorithms;
        private Optional<String> issuer = Optional.of(ISSUER);
        private List<String> audience = List.of(AUDIENCE);
        private Optional<URI> jwksUri = Optional.empty();
        private Optional<Path> jwksFile = Optional.empty();
        private Optional<Path> publicKey = Optional.empty();
        private Optional<Secret> secret = Optional.empty();
        private Duration clockSkew = Duration.ofSeconds(30);
        private Map<String, String> require = Map.of("scope", "chat:write");
        private boolean allowNoExpiry;

        Policy(List<String> algorithms) {
            this.algorithms = algorithms;
        }

        Policy secret(String value) {
            secret = Optional.of(new Secret(value));
            return this;
        }

        Policy publicKey(Path file) {
            publicKey = Optional.of(file);
            return this;
        }

        Policy jwksFile(Path file) {
            jwksFile = Optional.of(file);
            return this;
        }

        Policy jwksUri(URI uri) {
            jwksUri = Optional.of(uri);
            return this;
        }

        Policy clockSkew(Duration skew) {
            clockSkew = skew;
            return this;
        }

        Policy require(Map<String, String> rules) {
            require = rules;
            return this;
        }

        Policy allowNoExpiry() {
            allowNoExpiry = true;
            return this;
        }

        Policy noIssuerOrAudience() {
            issuer = Optional.empty();
            audience = List.of();
            return this;
        }

        AuthPolicy.JwtPolicy build() {
            return new AuthPolicy.JwtPolicy(
                    issuer,
                    audience,
                    algorithms,
                    jwksUri,
                    jwksFile,
                    publicKey,
                    secret,
                    clockSkew,
                    List.of("header"),
                    require,
                    AuthPolicy.OnExpiry.CLOSE,
                    allowNoExpiry);
        }
    }
}
