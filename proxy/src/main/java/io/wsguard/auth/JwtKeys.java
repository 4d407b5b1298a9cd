package io.wsguard.auth;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSSigner;
import com.nimbusds.jose.JWSVerifier;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.crypto.MACVerifier;
import com.nimbusds.jose.crypto.RSASSAVerifier;
import com.nimbusds.jose.jca.JCAContext;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKMatcher;
import com.nimbusds.jose.jwk.KeyType;
import com.nimbusds.jose.jwk.OctetKeyPair;
import com.nimbusds.jose.jwk.OctetSequenceKey;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.util.Base64URL;
import io.wsguard.tls.Pem;
import io.wsguard.tls.PemException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Set;

/**
 * Keys for JWS: PEM public keys and certificates as JWKs, JWKs as verifiers, and Ed25519 through
 * the JDK ({@code Signature "Ed25519"}, Java 15+) because nimbus's own Ed25519 classes need Google
 * Tink, which wsguard does not ship.
 */
final class JwtKeys {

    static final String PUBLIC_KEY_FORMS =
            "PEM: BEGIN PUBLIC KEY (RSA, EC P-256/P-384/P-521 or Ed25519) or BEGIN CERTIFICATE";

    /** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes. */
    private static final byte[] ED25519_SPKI_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");

    private JwtKeys() {}

    /** The public key in a PEM file ({@code BEGIN PUBLIC KEY} or {@code BEGIN CERTIFICATE}), as a JWK. */
    static JWK publicKey(Path file, String field) throws JwtConfigException {
        final PublicKey key;
        try {
            key = Pem.publicKey(file);
        } catch (PemException e) {
            // auth.jwt's own words, naming the key forms a verifier takes; as they were before Pem read the file.
            final String message =
                    switch (e.problem()) {
                        case WRONG_KIND ->
                            " holds a private key (expected: the public half only, " + PUBLIC_KEY_FORMS
                                    + "; openssl pkey -pubout makes it)";
                        case ABSENT -> " holds no public key (expected: " + PUBLIC_KEY_FORMS + ")";
                        case UNUSABLE -> " holds no usable public key (expected: " + PUBLIC_KEY_FORMS + ")";
                        default -> " is not readable PEM (expected: " + PUBLIC_KEY_FORMS + ")";
                    };
            throw new JwtConfigException(field, quote(file) + message, e);
        }
        return toJwk(key, field, quote(file));
    }

    /** A JDK public key as a JWK; RSA keys below 2048 bits are refused (RFC 7518 §3.3). */
    static JWK toJwk(PublicKey key, String field, String where) throws JwtConfigException {
        if (key instanceof RSAPublicKey rsa) {
            if (rsa.getModulus().bitLength() < 2048) {
                throw new JwtConfigException(
                        field,
                        where + " holds an RSA key of " + rsa.getModulus().bitLength()
                                + " bits (expected: at least 2048)");
            }
            return new RSAKey.Builder(rsa).build();
        }
        if (key instanceof ECPublicKey ec) {
            final Curve curve = Curve.forECParameterSpec(ec.getParams());
            if (curve == null || !Set.of(Curve.P_256, Curve.P_384, Curve.P_521).contains(curve)) {
                throw new JwtConfigException(
                        field,
                        where + " holds an EC key on an unsupported curve" + " (expected: P-256, P-384 or P-521)");
            }
            return new ECKey.Builder(curve, ec).build();
        }
        if ("Ed25519".equals(key.getAlgorithm()) || "EdDSA".equals(key.getAlgorithm())) {
            final byte[] spki = key.getEncoded();
            if (spki.length != ED25519_SPKI_PREFIX.length + 32
                    || !Arrays.equals(
                            spki, 0, ED25519_SPKI_PREFIX.length, ED25519_SPKI_PREFIX, 0, ED25519_SPKI_PREFIX.length)) {
                throw new JwtConfigException(
                        field, where + " holds an EdDSA key that is not Ed25519 (expected: Ed25519)");
            }
            final byte[] x = Arrays.copyOfRange(spki, ED25519_SPKI_PREFIX.length, spki.length);
            return new OctetKeyPair.Builder(Curve.Ed25519, Base64URL.encode(x)).build();
        }
        throw new JwtConfigException(
                field, where + " holds a " + key.getAlgorithm() + " key (expected: RSA, EC or Ed25519)");
    }

    /** True when {@code jwk} can verify {@code alg}: the right key type, curve, use and length. */
    static boolean fits(JWK jwk, JWSAlgorithm alg) {
        if (!JWKMatcher.forJWSHeader(new JWSHeader(alg)).matches(jwk)) {
            return false;
        }
        if (jwk instanceof OctetSequenceKey oct) {
            return oct.toByteArray().length >= minSecretBytes(alg);
        }
        return true;
    }

    /** RFC 7518 §3.2: a key of the same size as the hash output or larger. */
    static int minSecretBytes(JWSAlgorithm alg) {
        if (JWSAlgorithm.HS384.equals(alg)) {
            return 48;
        }
        if (JWSAlgorithm.HS512.equals(alg)) {
            return 64;
        }
        return 32;
    }

    /** A verifier for one JWK; the key was checked with {@link #fits} first. */
    static JWSVerifier verifier(JWK jwk) throws JOSEException {
        if (jwk instanceof RSAKey rsa) {
            return new RSASSAVerifier(rsa);
        }
        if (jwk instanceof ECKey ec) {
            return new ECDSAVerifier(ec);
        }
        if (jwk instanceof OctetSequenceKey oct) {
            return new MACVerifier(oct);
        }
        if (jwk instanceof OctetKeyPair okp && Curve.Ed25519.equals(okp.getCurve())) {
            return new Ed25519JdkVerifier(okp.getDecodedX());
        }
        throw new JOSEException("unsupported key type " + jwk.getKeyType());
    }

    /** "an RSA key", "an EC P-256 key", "an Ed25519 key", "a secret": for messages. */
    static String describe(JWK jwk) {
        if (KeyType.RSA.equals(jwk.getKeyType())) {
            return "an RSA key";
        }
        if (jwk instanceof ECKey ec) {
            return "an EC " + ec.getCurve().getName() + " key";
        }
        if (jwk instanceof OctetKeyPair okp) {
            return "an " + okp.getCurve().getName() + " key";
        }
        if (jwk instanceof OctetSequenceKey) {
            return "a shared secret";
        }
        return "a " + jwk.getKeyType() + " key";
    }

    static String quote(Path file) {
        return "'" + file + "'";
    }

    /** Ed25519 verification (RFC 8037) with the JDK's own provider. */
    static final class Ed25519JdkVerifier implements JWSVerifier {

        private final PublicKey key;
        private final JCAContext jca = new JCAContext();

        Ed25519JdkVerifier(byte[] x) throws JOSEException {
            if (x.length != 32) {
                throw new JOSEException("an Ed25519 key has 32 bytes");
            }
            final byte[] spki = Arrays.copyOf(ED25519_SPKI_PREFIX, ED25519_SPKI_PREFIX.length + 32);
            System.arraycopy(x, 0, spki, ED25519_SPKI_PREFIX.length, 32);
            try {
                key = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(spki));
            } catch (GeneralSecurityException e) {
                throw new JOSEException("not an Ed25519 key", e);
            }
        }

        @Override
        public boolean verify(JWSHeader header, byte[] signingInput, Base64URL signature) throws JOSEException {
            if (!supportedJWSAlgorithms().contains(header.getAlgorithm())) {
                return false;
            }
            try {
                final Signature verifier = Signature.getInstance("Ed25519");
                verifier.initVerify(key);
                verifier.update(signingInput);
                return verifier.verify(signature.decode());
            } catch (java.security.SignatureException e) {
                return false;
            } catch (GeneralSecurityException e) {
                throw new JOSEException("Ed25519 verification failed", e);
            }
        }

        @Override
        public Set<JWSAlgorithm> supportedJWSAlgorithms() {
            return Set.of(JWSAlgorithm.EdDSA, JWSAlgorithm.Ed25519);
        }

        @Override
        public JCAContext getJCAContext() {
            return jca;
        }
    }

    /** Ed25519 signing (RFC 8037) with the JDK's own provider, for {@link TokenMinter}. */
    static final class Ed25519JdkSigner implements JWSSigner {

        private final PrivateKey key;
        private final JCAContext jca = new JCAContext();

        Ed25519JdkSigner(PrivateKey key) {
            this.key = key;
        }

        @Override
        public Base64URL sign(JWSHeader header, byte[] signingInput) throws JOSEException {
            try {
                final Signature signer = Signature.getInstance("Ed25519");
                signer.initSign(key);
                signer.update(signingInput);
                return Base64URL.encode(signer.sign());
            } catch (GeneralSecurityException e) {
                throw new JOSEException("Ed25519 signing failed", e);
            }
        }

        @Override
        public Set<JWSAlgorithm> supportedJWSAlgorithms() {
            return Set.of(JWSAlgorithm.EdDSA);
        }

        @Override
        public JCAContext getJCAContext() {
            return jca;
        }
    }
}
