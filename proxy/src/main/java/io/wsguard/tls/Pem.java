package io.wsguard.tls;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMEncryptedKeyPair;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place wsguard reads PEM files: TLS certificates and keys, {@code auth.jwt.publicKey},
 * the key of {@code wsguard token}, and the demo's dev certificates. Reads with BouncyCastle's
 * {@link PEMParser}, turning every way a file can be wrong into a {@link PemException} that names
 * the file and what was expected; each caller wraps it in its own convention. Jetty reads no PEM at
 * all (notes §2.6, pitfall 9), and the JDK alone reads only PKCS#8.
 *
 * <p>The JCA converters run against the JDK's default providers; BouncyCastle is never registered
 * as a provider, so it cannot change which TLS implementation the JVM uses.
 */
public final class Pem {

    private static final Logger LOG = LoggerFactory.getLogger(Pem.class);

    static final String KEY_FORMS = "a PEM private key: BEGIN PRIVATE KEY (PKCS#8), BEGIN RSA PRIVATE KEY (PKCS#1)"
            + " or BEGIN EC PRIVATE KEY (SEC1), unencrypted";

    static final String PUBLIC_KEY_FORMS = "a PEM public key: BEGIN PUBLIC KEY or BEGIN CERTIFICATE";

    private Pem() {}

    /**
     * A certificate chain, leaf first: every {@code CERTIFICATE} block of the file, in order. The
     * file must end where a PEM block ends: a file caught while it is being written (a renewal
     * appending the intermediate after the leaf) must not pass as a shorter chain.
     */
    public static List<X509Certificate> certificates(Path file) {
        final List<X509Certificate> certs = new ArrayList<>();
        final String text = read(file);
        int blocks = 0;
        try (PEMParser parser = new PEMParser(new StringReader(text))) {
            final JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
            for (Object object = parser.readObject(); object != null; object = parser.readObject()) {
                blocks++;
                // Other blocks (a key in a combined file, EC PARAMETERS) are not ours to judge here.
                if (object instanceof X509CertificateHolder) {
                    certs.add(converter.getCertificate((X509CertificateHolder) object));
                }
            }
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            throw new PemException(
                    file,
                    PemException.Problem.MALFORMED,
                    quote(file) + " is not valid PEM (expected: -----BEGIN CERTIFICATE----- blocks)",
                    e);
        }
        if (certs.isEmpty()) {
            throw new PemException(
                    file,
                    PemException.Problem.ABSENT,
                    quote(file) + " holds no certificate" + " (expected: PEM with -----BEGIN CERTIFICATE-----)");
        }
        requireWhole(text, blocks, file);
        return certs;
    }

    /**
     * PEMParser stops without a word at a {@code -----BEGIN} line it cannot read (cut short, or not
     * followed by its {@code -----END} yet), so every block it read can still be a part of the file:
     * count the markers against what it read, and look at what follows the last block.
     */
    private static void requireWhole(String text, int blocksRead, Path file) {
        int begins = 0;
        for (String line : text.split("\r?\n", -1)) {
            if (line.startsWith("-----BEGIN")) {
                begins++;
            }
        }
        final int lastEnd = text.lastIndexOf("-----END ");
        final int afterLastBlock = lastEnd < 0 ? 0 : lineEnd(text, lastEnd);
        final String tail = text.substring(afterLastBlock).strip();
        if (begins != blocksRead || tail.startsWith("-")) {
            throw new PemException(
                    file,
                    PemException.Problem.TRUNCATED,
                    quote(file) + " ends inside a PEM block ("
                            + blocksRead + " of "
                            + Math.max(begins, blocksRead + 1)
                            + " blocks complete; expected: every -----BEGIN block closed by"
                            + " its -----END line; is it still being written?)");
        }
    }

    private static int lineEnd(String text, int from) {
        final int newline = text.indexOf('\n', from);
        return newline < 0 ? text.length() : newline + 1;
    }

    /**
     * Checks that {@code chain} is one chain, leaf first: each certificate is issued, and signed, by
     * the one after it. A chain out of order, or with a stranger in it, fails at clients that do
     * not reorder, and is what a file spliced from two renewals looks like.
     */
    static void requireChainInOrder(List<X509Certificate> chain, Path file) {
        for (int i = 0; i + 1 < chain.size(); i++) {
            final X509Certificate cert = chain.get(i);
            final X509Certificate issuer = chain.get(i + 1);
            boolean signed = cert.getIssuerX500Principal().equals(issuer.getSubjectX500Principal());
            if (signed) {
                try {
                    cert.verify(issuer.getPublicKey());
                } catch (GeneralSecurityException | RuntimeException e) {
                    signed = false;
                }
            }
            if (!signed) {
                throw new PemException(
                        file,
                        PemException.Problem.CHAIN_OUT_OF_ORDER,
                        "certificate " + (i + 2)
                                + " in " + quote(file) + " ("
                                + issuer.getSubjectX500Principal().getName() + ") did not issue certificate " + (i + 1)
                                + " ("
                                + cert.getSubjectX500Principal().getName() + ", issued by "
                                + cert.getIssuerX500Principal().getName()
                                + ") (expected: the leaf first, each certificate"
                                + " followed by the one that signed it)");
            }
        }
    }

    /**
     * The first private key in the file, in any of the forms of {@link #KEY_FORMS}. Blocks before it
     * that are neither a key nor a certificate are skipped: {@code openssl ecparam -genkey} writes
     * EC PARAMETERS before the key.
     */
    public static PrivateKey privateKey(Path file) {
        final String text = read(file);
        final JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
        try (PEMParser parser = new PEMParser(new StringReader(text))) {
            for (Object object = parser.readObject(); object != null; object = parser.readObject()) {
                if (object instanceof PrivateKeyInfo info) {
                    return convert(
                            file,
                            () -> converter.getPrivateKey(info),
                            quote(file) + " is not a readable private key (expected: " + KEY_FORMS + ")");
                }
                if (object instanceof PEMKeyPair pair) {
                    return convert(
                            file,
                            () -> converter.getKeyPair(pair).getPrivate(),
                            quote(file) + " is not a readable private key (expected: " + KEY_FORMS + ")");
                }
                if (object instanceof PKCS8EncryptedPrivateKeyInfo || object instanceof PEMEncryptedKeyPair) {
                    throw new PemException(
                            file,
                            PemException.Problem.ENCRYPTED,
                            quote(file) + " is encrypted (expected: " + KEY_FORMS
                                    + "; decrypt it with openssl pkcs8 -topk8 -nocrypt)");
                }
                if (object instanceof X509CertificateHolder) {
                    throw new PemException(
                            file,
                            PemException.Problem.WRONG_KIND,
                            quote(file) + " is a certificate (expected: " + KEY_FORMS + ")");
                }
                // Anything else (openssl ecparam writes EC PARAMETERS before the key): keep looking.
            }
        } catch (IOException | RuntimeException e) {
            throw malformed(e, file, quote(file) + " is not a readable private key (expected: " + KEY_FORMS + ")");
        }
        throw new PemException(
                file, PemException.Problem.ABSENT, quote(file) + " holds no private key (expected: " + KEY_FORMS + ")");
    }

    /**
     * The first public key in the file: a {@code PUBLIC KEY} block (SubjectPublicKeyInfo), or the
     * key of the first {@code CERTIFICATE}. A private key where the public one should be is refused,
     * not derived from: a file handed out as public must not hold the private half.
     */
    public static PublicKey publicKey(Path file) {
        final String text = read(file);
        try (PEMParser parser = new PEMParser(new StringReader(text))) {
            for (Object object = parser.readObject(); object != null; object = parser.readObject()) {
                if (object instanceof SubjectPublicKeyInfo spki) {
                    return convert(
                            file,
                            () -> new JcaPEMKeyConverter().getPublicKey(spki),
                            quote(file) + " holds no usable public key (expected: " + PUBLIC_KEY_FORMS + ")");
                }
                if (object instanceof X509CertificateHolder cert) {
                    return convert(
                            file,
                            () -> new JcaX509CertificateConverter()
                                    .getCertificate(cert)
                                    .getPublicKey(),
                            quote(file) + " holds no usable public key (expected: " + PUBLIC_KEY_FORMS + ")");
                }
                if (object instanceof PrivateKeyInfo
                        || object instanceof PEMKeyPair
                        || object instanceof PKCS8EncryptedPrivateKeyInfo
                        || object instanceof PEMEncryptedKeyPair) {
                    throw new PemException(
                            file,
                            PemException.Problem.WRONG_KIND,
                            quote(file) + " holds a private key (expected: " + PUBLIC_KEY_FORMS + ")");
                }
                // Anything else (EC PARAMETERS): keep looking, as privateKey does.
            }
        } catch (IOException | RuntimeException e) {
            throw malformed(e, file, quote(file) + " is not readable PEM (expected: " + PUBLIC_KEY_FORMS + ")");
        }
        throw new PemException(
                file,
                PemException.Problem.ABSENT,
                quote(file) + " holds no public key (expected: " + PUBLIC_KEY_FORMS + ")");
    }

    /** The JCA step after a block parsed, which fails for a key the JDK has no algorithm for. */
    private interface Conversion<T> {
        T run() throws IOException, GeneralSecurityException;
    }

    private static <T> T convert(Path file, Conversion<T> conversion, String message) {
        try {
            return conversion.run();
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            throw new PemException(file, PemException.Problem.UNUSABLE, message, e);
        }
    }

    /** A {@link PemException} thrown inside the parsing loop passes as it is; anything else is a malformed file. */
    private static PemException malformed(Exception e, Path file, String message) {
        if (e instanceof PemException pem) {
            return pem;
        }
        return new PemException(file, PemException.Problem.MALFORMED, message, e);
    }

    /**
     * True when {@code key} is the private half of {@code publicKey}. Proven by signing a fixed
     * challenge and verifying it: the one test that works alike for RSA, EC and Ed25519, whatever
     * the key file's form kept of the public key (PKCS#8 EC and Ed25519 keys often keep none).
     */
    public static boolean belongTogether(PrivateKey key, PublicKey publicKey) {
        final String algorithm;
        switch (key.getAlgorithm()) {
            case "RSA" -> algorithm = "SHA256withRSA";
            case "EC" -> algorithm = "SHA256withECDSA";
            case "EdDSA", "Ed25519" -> algorithm = "Ed25519";
            case "Ed448" -> algorithm = "Ed448";
            default -> {
                return false;
            }
        }
        try {
            final byte[] challenge = "wsguard key check".getBytes(StandardCharsets.US_ASCII);
            final Signature signer = Signature.getInstance(algorithm);
            signer.initSign(key);
            signer.update(challenge);
            final byte[] signature = signer.sign();
            final Signature verifier = Signature.getInstance(algorithm);
            verifier.initVerify(publicKey);
            verifier.update(challenge);
            return verifier.verify(signature);
        } catch (GeneralSecurityException | RuntimeException e) {
            // A key of another type than the certificate's (RSA key, EC certificate) lands here.
            return false;
        }
    }

    /** Logs, but allows, a certificate outside its validity: refusing to start would make an outage worse. */
    static void warnIfNotValidNow(X509Certificate cert, String field, Path file) {
        final Instant now = Instant.now();
        if (cert.getNotAfter().toInstant().isBefore(now)) {
            LOG.warn(
                    "tls {}: certificate in '{}' ({}) expired on {}; clients will refuse it",
                    field,
                    file,
                    cert.getSubjectX500Principal().getName(),
                    cert.getNotAfter().toInstant());
        } else if (cert.getNotBefore().toInstant().isAfter(now)) {
            LOG.warn(
                    "tls {}: certificate in '{}' ({}) is not valid before {}; clients will refuse it",
                    field,
                    file,
                    cert.getSubjectX500Principal().getName(),
                    cert.getNotBefore().toInstant());
        }
    }

    static String quote(Path file) {
        return "'" + file + "'";
    }

    private static String read(Path file) {
        try (Reader in = Files.newBufferedReader(file, StandardCharsets.ISO_8859_1)) {
            final StringBuilder text = new StringBuilder();
            final char[] buffer = new char[8192];
            for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
                text.append(buffer, 0, n);
            }
            return text.toString();
        } catch (NoSuchFileException e) {
            throw new PemException(
                    file,
                    PemException.Problem.MISSING,
                    quote(file) + " does not exist (expected: a readable PEM file)",
                    e);
        } catch (AccessDeniedException e) {
            throw new PemException(
                    file,
                    PemException.Problem.UNREADABLE,
                    quote(file) + " is not readable by this user (expected: a readable PEM file)",
                    e);
        } catch (IOException e) {
            throw new PemException(
                    file,
                    PemException.Problem.UNREADABLE,
                    "cannot read " + quote(file) + " (expected: a readable PEM file)",
                    e);
        }
    }
}
