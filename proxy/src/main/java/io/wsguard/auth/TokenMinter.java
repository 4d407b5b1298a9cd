package io.wsguard.auth;

import static java.util.Objects.requireNonNull;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSSigner;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.policy.Secret;
import io.wsguard.tls.Pem;
import io.wsguard.tls.PemException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.EdECPrivateKey;
import java.security.interfaces.RSAPrivateKey;
import java.security.spec.NamedParameterSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Mints signed JWTs for testing: what {@code wsguard token} prints (README, CLI). HS256 (or HS384,
 * HS512) from a secret; RS256, ES256/384/512 or EdDSA from a PEM private key, the algorithm
 * following the key unless one is given. Bad input is an {@link IllegalArgumentException} whose
 * message is written for the user and never holds the secret.
 */
public final class TokenMinter {

    private static final String KEY_FORMS = "a PEM private key: BEGIN PRIVATE KEY (PKCS#8; RSA, EC or Ed25519),"
            + " BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY, unencrypted";

    /** Claims set from options, not from {@code claims}. */
    private static final Set<String> REGISTERED = Set.of("sub", "iss", "aud", "exp", "iat", "nbf");

    private TokenMinter() {}

    /**
     * What to mint.
     *
     * @param secret for HS256/384/512; exactly one of {@code secret} and {@code key}
     * @param key a PEM private key file, for RS/PS, ES and EdDSA
     * @param algorithm overrides the default: HS256 for a secret; RS256, ES256/ES384/ES512 (by curve) or EdDSA for a
     * key
     * @param kid the header's {@code kid}
     * @param subject {@code sub}
     * @param issuer {@code iss}
     * @param audience {@code aud}: one value is written as a string, several as an array
     * @param ttl from now to {@code exp}; {@code iat} is now
     * @param claims further claims, values as strings (a {@code scope} of several words is one string)
     */
    public record Options(
            Optional<Secret> secret,
            Optional<Path> key,
            Optional<String> algorithm,
            Optional<String> kid,
            Optional<String> subject,
            Optional<String> issuer,
            List<String> audience,
            Duration ttl,
            Map<String, String> claims) {

        public Options {
            requireNonNull(secret, "secret");
            requireNonNull(key, "key");
            requireNonNull(algorithm, "algorithm");
            requireNonNull(kid, "kid");
            requireNonNull(subject, "subject");
            requireNonNull(issuer, "issuer");
            audience = List.copyOf(audience);
            requireNonNull(ttl, "ttl");
            claims = Map.copyOf(claims);
            if (secret.isPresent() == key.isPresent()) {
                throw new IllegalArgumentException(
                        "give either a secret (HS256) or a key (a PEM private key file), not "
                                + (secret.isPresent() ? "both" : "neither"));
            }
            if (ttl.isNegative() || ttl.isZero()) {
                throw new IllegalArgumentException("ttl: " + ttl + " (expected: > 0, like 15m)");
            }
            for (String name : claims.keySet()) {
                if (name.isEmpty()) {
                    throw new IllegalArgumentException("claim: empty name (expected: NAME=VALUE)");
                }
                if (REGISTERED.contains(name)) {
                    throw new IllegalArgumentException("claim: '" + name + "' is set by its own option"
                            + " (expected: sub, iss, aud and ttl for sub, iss, aud, iat, exp)");
                }
            }
        }

        /** An HS256 token for {@code subject}, valid for {@code ttl}; other fields empty. */
        public static Options withSecret(String secret, String subject, Duration ttl) {
            return new Options(
                    Optional.of(new Secret(secret)),
                    Optional.empty(),
                    Optional.empty(),
                    Optional.empty(),
                    Optional.ofNullable(subject),
                    Optional.empty(),
                    List.of(),
                    ttl,
                    Map.of());
        }

        /** A token signed with the PEM private key in {@code key} for {@code subject}, valid for {@code ttl}. */
        public static Options withKey(Path key, String subject, Duration ttl) {
            return new Options(
                    Optional.empty(),
                    Optional.of(key),
                    Optional.empty(),
                    Optional.empty(),
                    Optional.ofNullable(subject),
                    Optional.empty(),
                    List.of(),
                    ttl,
                    Map.of());
        }
    }

    /** Splits a {@code --claim NAME=VALUE} argument at its first {@code =}. */
    public static Map.Entry<String, String> parseClaim(String argument) {
        final int eq = argument.indexOf('=');
        if (eq <= 0) {
            throw new IllegalArgumentException(
                    "claim: '" + argument + "' (expected: NAME=VALUE, like scope=chat:write)");
        }
        return Map.entry(argument.substring(0, eq), argument.substring(eq + 1));
    }

    /** The compact serialization of a freshly signed token. */
    public static String mint(Options options, Clock clock) {
        requireNonNull(options, "options");
        final Signing signing = options.secret().isPresent()
                ? secretSigning(options.secret().get(), options.algorithm())
                : keySigning(options.key().orElseThrow(), options.algorithm());
        final Instant now = clock.instant().truncatedTo(ChronoUnit.SECONDS);
        final JWTClaimsSet.Builder claims =
                new JWTClaimsSet.Builder().issueTime(Date.from(now)).expirationTime(Date.from(now.plus(options.ttl())));
        options.subject().ifPresent(claims::subject);
        options.issuer().ifPresent(claims::issuer);
        if (options.audience().size() == 1) {
            claims.audience(options.audience().get(0));
        } else if (!options.audience().isEmpty()) {
            claims.audience(options.audience());
        }
        options.claims().forEach(claims::claim);
        final JWSHeader.Builder header = new JWSHeader.Builder(signing.alg()).type(JOSEObjectType.JWT);
        options.kid().ifPresent(header::keyID);
        final SignedJWT jwt = new SignedJWT(header.build(), claims.build());
        try {
            jwt.sign(signing.signer());
        } catch (JOSEException e) {
            throw new IllegalArgumentException(
                    "cannot sign with " + signing.alg().getName() + ": " + e.getMessage(), e);
        }
        return jwt.serialize();
    }

    private record Signing(JWSAlgorithm alg, JWSSigner signer) {}

    private static Signing secretSigning(Secret secret, Optional<String> algorithm) {
        final JWSAlgorithm alg = JWSAlgorithm.parse(algorithm.orElse("HS256"));
        if (!JWSAlgorithm.Family.HMAC_SHA.contains(alg)) {
            throw new IllegalArgumentException("algorithm: " + alg.getName() + " cannot be used with a secret"
                    + " (expected: HS256, HS384 or HS512; or give a private key)");
        }
        final byte[] bytes = secret.value().getBytes(StandardCharsets.UTF_8);
        final int min = JwtKeys.minSecretBytes(alg);
        if (bytes.length < min) {
            throw new IllegalArgumentException("secret: too short for " + alg.getName() + ", " + bytes.length
                    + " bytes (expected: at least " + min + " bytes)");
        }
        try {
            return new Signing(alg, new MACSigner(bytes));
        } catch (JOSEException e) {
            throw new IllegalArgumentException("secret: not usable for " + alg.getName(), e);
        }
    }

    private static Signing keySigning(Path file, Optional<String> algorithm) {
        final PrivateKey key = privateKey(file);
        try {
            if (key instanceof RSAPrivateKey rsa) {
                final JWSAlgorithm alg = JWSAlgorithm.parse(algorithm.orElse("RS256"));
                if (!JWSAlgorithm.Family.RSA.contains(alg)) {
                    throw mismatch(file, "an RSA key", alg, "RS256, RS384, RS512, PS256, PS384 or PS512");
                }
                if (rsa.getModulus().bitLength() < 2048) {
                    throw new IllegalArgumentException("key: '" + file + "' is an RSA key of "
                            + rsa.getModulus().bitLength() + " bits (expected: at least 2048)");
                }
                return new Signing(alg, new RSASSASigner(rsa));
            }
            if (key instanceof ECPrivateKey ec) {
                final Curve curve = Curve.forECParameterSpec(ec.getParams());
                final JWSAlgorithm byCurve = Curve.P_256.equals(curve)
                        ? JWSAlgorithm.ES256
                        : Curve.P_384.equals(curve)
                                ? JWSAlgorithm.ES384
                                : Curve.P_521.equals(curve) ? JWSAlgorithm.ES512 : null;
                if (byCurve == null) {
                    throw new IllegalArgumentException("key: '" + file + "' is an EC key on an unsupported curve"
                            + " (expected: P-256, P-384 or P-521)");
                }
                final JWSAlgorithm alg = algorithm.map(JWSAlgorithm::parse).orElse(byCurve);
                if (!alg.equals(byCurve)) {
                    throw mismatch(file, "an EC " + curve.getName() + " key", alg, byCurve.getName());
                }
                return new Signing(alg, new ECDSASigner(ec));
            }
            // By curve, not by getAlgorithm(): the JDK names Ed448 keys "EdDSA" too, and Pem hands them over
            // where the Ed25519-only reader before it refused them.
            if (key instanceof EdECPrivateKey ed
                    && NamedParameterSpec.ED25519
                            .getName()
                            .equals(ed.getParams().getName())) {
                final JWSAlgorithm alg = algorithm.map(JWSAlgorithm::parse).orElse(JWSAlgorithm.EdDSA);
                if (!JWSAlgorithm.EdDSA.equals(alg)) {
                    throw mismatch(file, "an Ed25519 key", alg, "EdDSA");
                }
                return new Signing(alg, new JwtKeys.Ed25519JdkSigner(key));
            }
        } catch (JOSEException e) {
            throw new IllegalArgumentException("key: '" + file + "' cannot sign: " + e.getMessage(), e);
        }
        final String type = key instanceof EdECPrivateKey ed ? ed.getParams().getName() : key.getAlgorithm();
        throw new IllegalArgumentException("key: '" + file + "' is a " + type + " key (expected: RSA, EC or Ed25519)");
    }

    private static IllegalArgumentException mismatch(Path file, String what, JWSAlgorithm alg, String expected) {
        return new IllegalArgumentException("algorithm: " + alg.getName() + " does not fit '" + file + "', " + what
                + " (expected: " + expected + ")");
    }

    private static PrivateKey privateKey(Path file) {
        try {
            return Pem.privateKey(file);
        } catch (PemException e) {
            // The option's own words: "key:" first, and every refusal lists the forms a signing key may take.
            final String problem =
                    switch (e.problem()) {
                        case MISSING -> "'" + file + "' does not exist";
                        case UNUSABLE -> "'" + file + "' is not a readable private key";
                        case ENCRYPTED -> "'" + file + "' is encrypted";
                        case WRONG_KIND, ABSENT -> "'" + file + "' holds no private key";
                        default -> "cannot read '" + file + "'";
                    };
            throw new IllegalArgumentException("key: " + problem + " (expected: " + KEY_FORMS + ")", e);
        }
    }
}
