package io.wsguard.demo;

import io.wsguard.tls.Pem;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.util.IPAddress;
import org.bouncycastle.util.io.pem.PemObject;

/**
 * Development certificates, made with BouncyCastle: a throw-away CA and a server certificate
 * signed by it, written as PEM files that {@code listeners[].tls} loads, and the demo's token
 * signing key. {@link #ensure(Path)} and {@link #ensureJwtKey(Path)} are what {@code wsguard demo}
 * runs on first start ({@code certs/dev/}).
 *
 * <p>The certificate and file primitives are public for the tests' certificate authority, which
 * issues RSA, EC and Ed25519 leaves in every key form from them and lives with the tests, out of
 * this jar.
 *
 * <p>Never use these for anything but development: the CA key lies next to the certificates.
 * Files holding a private key are made readable by their owner only where the file system has
 * POSIX permissions.
 */
public final class DevCerts {

    /** Validity of the dev CA and server certificate: 825 days, the most Apple platforms accept for a leaf. */
    public static final Duration DEV_VALIDITY = Duration.ofDays(825);

    /** Host names and addresses the dev server certificate is valid for (pitfall 8: the SANs must cover them). */
    public static final List<String> DEV_SANS = List.of("localhost", "127.0.0.1", "::1");

    private static final SecureRandom RANDOM = new SecureRandom();

    private DevCerts() {}

    /**
     * The files {@link #ensure(Path)} made or found.
     *
     * @param caCertificate {@code ca.crt}, to trust in clients
     * @param caKey {@code ca.key}
     * @param certificate {@code server.crt}, the server certificate alone
     * @param privateKey {@code server.key}, PKCS#8
     */
    public record DevCertPaths(Path caCertificate, Path caKey, Path certificate, Path privateKey) {}

    /** A CA read back from its files: all that issuing a server certificate needs. */
    private record Ca(X509Certificate certificate, PrivateKey key) {}

    /**
     * Makes sure {@code dir} holds a dev CA ({@code ca.crt}, {@code ca.key}) and a server
     * certificate signed by it ({@code server.crt}, {@code server.key}, PKCS#8) for
     * {@code localhost}, {@code 127.0.0.1} and {@code ::1}, EC P-256, valid 825 days.
     *
     * <p>Idempotent: files that exist, parse and are still valid are kept, so that a browser that
     * was told to trust the CA keeps trusting it. A server certificate is re-issued (from the
     * existing CA when that is valid) if it is missing, expired or unreadable.
     */
    public static DevCertPaths ensure(Path dir) {
        final DevCertPaths paths = new DevCertPaths(
                dir.resolve("ca.crt"), dir.resolve("ca.key"),
                dir.resolve("server.crt"), dir.resolve("server.key"));
        try {
            Files.createDirectories(dir);
            Ca ca = readValidCa(paths.caCertificate(), paths.caKey());
            final boolean newCa = ca == null;
            if (newCa) {
                final KeyPair keys = keyPair("EC");
                ca = new Ca(caCertificate("ca", keys, Instant.now(), DEV_VALIDITY), keys.getPrivate());
                writeCertificates(paths.caCertificate(), List.of(ca.certificate()));
                writeKey(paths.caKey(), pkcs8(keys.getPrivate()));
            }
            if (newCa || !validLeaf(paths.certificate(), paths.privateKey(), ca)) {
                final KeyPair keys = keyPair("EC");
                final X509Certificate leaf = leafCertificate(
                        ca.certificate(), ca.key(), "server", DEV_SANS, keys, Instant.now(), DEV_VALIDITY);
                writeCertificates(paths.certificate(), List.of(leaf));
                writeKey(paths.privateKey(), pkcs8(keys.getPrivate()));
            }
            return paths;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write dev certificates to " + dir, e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot make dev certificates for " + dir, e);
        }
    }

    /**
     * The demo's token signing key.
     *
     * @param privateKey {@code jwt.key}, PKCS#8: what {@code wsguard token --key} signs with
     * @param publicKey {@code jwt.pub}, SubjectPublicKeyInfo: what the demo policy's
     *     {@code auth.jwt.publicKey} verifies with
     */
    public record JwtKeyPaths(Path privateKey, Path publicKey) {}

    /**
     * Makes sure {@code dir} holds an RSA-2048 token signing key pair ({@code jwt.key},
     * {@code jwt.pub}); an existing readable pair is kept, so tokens minted earlier stay valid.
     * RSA rather than EC: verifying RS256 is about 25 times cheaper than ES256 on JDK 17.
     */
    public static JwtKeyPaths ensureJwtKey(Path dir) {
        final JwtKeyPaths paths = new JwtKeyPaths(dir.resolve("jwt.key"), dir.resolve("jwt.pub"));
        try {
            Files.createDirectories(dir);
            if (Files.isRegularFile(paths.privateKey()) && Files.isRegularFile(paths.publicKey())) {
                return paths;
            }
            final KeyPair keys = keyPair("RSA");
            writeKey(paths.privateKey(), pkcs8(keys.getPrivate()));
            final StringWriter out = new StringWriter();
            try (JcaPEMWriter pem = new JcaPEMWriter(out)) {
                pem.writeObject(keys.getPublic());
            }
            writeAtomically(paths.publicKey(), out.toString(), false);
            return paths;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the dev token key to " + dir, e);
        }
    }

    /** A new key pair: {@code RSA} (2048 bits), {@code EC} (P-256) or {@code Ed25519}. */
    public static KeyPair keyPair(String algorithm) {
        try {
            final KeyPairGenerator gen = KeyPairGenerator.getInstance(algorithm);
            switch (algorithm) {
                case "RSA" -> gen.initialize(2048, RANDOM);
                case "EC" -> gen.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
                default -> {
                    // Ed25519 takes no parameters.
                }
            }
            return gen.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot generate a " + algorithm + " key", e);
        }
    }

    /** A self-signed CA certificate ({@code CN=NAME, O=wsguard dev}) for {@code keys}, valid from {@code notBefore}. */
    public static X509Certificate caCertificate(String name, KeyPair keys, Instant notBefore, Duration validity)
            throws IOException, GeneralSecurityException {
        final X500Name subject = new X500Name("CN=" + name + ", O=wsguard dev");
        final JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        final X509v3CertificateBuilder builder = builder(subject, subject, notBefore, validity, keys)
                .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
                .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
        return sign(builder, keys.getPrivate());
    }

    /**
     * A leaf certificate for {@code keys} signed by {@code ca}, for the given SANs (DNS names or IP
     * literals), usable both as server and as client certificate. Its CN is the first SAN, or
     * {@code name} when there is none. A {@code notBefore} in the past with a short validity gives
     * an expired certificate.
     */
    public static X509Certificate leafCertificate(
            X509Certificate ca,
            PrivateKey caKey,
            String name,
            List<String> sans,
            KeyPair keys,
            Instant notBefore,
            Duration validity)
            throws IOException, GeneralSecurityException {
        final X500Name subject = new X500Name("CN=" + (sans.isEmpty() ? name : sans.get(0)) + ", O=wsguard dev");
        final X500Name issuer =
                X500Name.getInstance(ca.getSubjectX500Principal().getEncoded());
        final JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        final int usage = "RSA".equals(keys.getPublic().getAlgorithm())
                ? KeyUsage.digitalSignature | KeyUsage.keyEncipherment
                : KeyUsage.digitalSignature;
        final X509v3CertificateBuilder builder = builder(issuer, subject, notBefore, validity, keys)
                .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                .addExtension(Extension.keyUsage, true, new KeyUsage(usage))
                .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(new KeyPurposeId[] {
                    KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth
                }))
                .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()))
                .addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(ca));
        if (!sans.isEmpty()) {
            builder.addExtension(Extension.subjectAlternativeName, false, generalNames(sans));
        }
        return sign(builder, caKey);
    }

    /** Writes certificates as a PEM bundle (for chains and CA bundles), replacing the file atomically. */
    public static void writeCertificates(Path file, List<X509Certificate> certificates) throws IOException {
        final StringWriter out = new StringWriter();
        try (JcaPEMWriter pem = new JcaPEMWriter(out)) {
            for (X509Certificate cert : certificates) {
                pem.writeObject(cert);
            }
        }
        writeAtomically(file, out.toString(), false);
    }

    /** Writes one PEM object holding a private key, in any form, owner-readable only, replacing the file atomically. */
    public static void writeKey(Path file, PemObject key) throws IOException {
        final StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            writer.writeObject(key);
        }
        writeAtomically(file, out.toString(), true);
    }

    /** {@code BEGIN PRIVATE KEY}: the form every key type has. */
    public static PemObject pkcs8(PrivateKey key) throws IOException {
        return new JcaPKCS8Generator(key, null).generate();
    }

    /** Makes a file readable by its owner only, where the file system has POSIX permissions. */
    public static void restrict(Path file) throws IOException {
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        }
    }

    private static X509v3CertificateBuilder builder(
            X500Name issuer, X500Name subject, Instant notBefore, Duration validity, KeyPair keys) {
        // Positive 64-bit random serial: unique enough for tests that tell certificates apart by serial.
        final BigInteger serial = new BigInteger(64, RANDOM).setBit(62);
        return new JcaX509v3CertificateBuilder(
                issuer, serial, Date.from(notBefore), Date.from(notBefore.plus(validity)), subject, keys.getPublic());
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
            throws GeneralSecurityException {
        final String algorithm =
                switch (signer.getAlgorithm()) {
                    case "RSA" -> "SHA256withRSA";
                    case "EC" -> "SHA256withECDSA";
                    default -> "Ed25519";
                };
        try {
            final X509CertificateHolder holder = builder.build(new JcaContentSignerBuilder(algorithm).build(signer));
            return new JcaX509CertificateConverter().getCertificate(holder);
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException("cannot sign with " + algorithm, e);
        }
    }

    private static GeneralNames generalNames(List<String> sans) {
        final List<GeneralName> names = new ArrayList<>();
        for (String san : sans) {
            names.add(
                    IPAddress.isValid(san)
                            ? new GeneralName(GeneralName.iPAddress, san)
                            : new GeneralName(GeneralName.dNSName, san));
        }
        return new GeneralNames(names.toArray(GeneralName[]::new));
    }

    /** Writes to a temporary sibling and renames it, so that a watcher never sees half a file. */
    private static void writeAtomically(Path file, String text, boolean secret) throws IOException {
        final Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (Writer out = Files.newBufferedWriter(tmp, StandardCharsets.US_ASCII)) {
            out.write(text);
        }
        if (secret) {
            restrict(tmp);
        }
        try {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** The CA in these files if both parse, belong together and the certificate is valid now; otherwise null. */
    private static Ca readValidCa(Path certFile, Path keyFile) {
        if (!Files.isRegularFile(certFile) || !Files.isRegularFile(keyFile)) {
            return null;
        }
        try {
            final X509Certificate cert = Pem.certificates(certFile).get(0);
            final PrivateKey key = Pem.privateKey(keyFile);
            cert.checkValidity();
            return Pem.belongTogether(key, cert.getPublicKey()) ? new Ca(cert, key) : null;
        } catch (GeneralSecurityException | RuntimeException e) {
            return null;
        }
    }

    /** True when the certificate and key in these files parse, belong together, are valid and come from {@code ca}. */
    private static boolean validLeaf(Path certFile, Path keyFile, Ca ca) {
        if (!Files.isRegularFile(certFile) || !Files.isRegularFile(keyFile)) {
            return false;
        }
        try {
            final X509Certificate cert = Pem.certificates(certFile).get(0);
            cert.checkValidity();
            cert.verify(ca.certificate().getPublicKey());
            return Pem.belongTogether(Pem.privateKey(keyFile), cert.getPublicKey());
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }
}
