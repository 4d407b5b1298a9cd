package io.wsguard.demo;

import static java.util.Objects.requireNonNull;

import io.wsguard.tls.Pem;
import java.io.IOException;
import java.io.OutputStream;
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
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
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
 * Development and test certificates, made with BouncyCastle: a throw-away CA and leaf certificates
 * signed by it, written as PEM files that {@code listeners[].tls} loads.
 *
 * <p>{@link #ensure(Path)} is what {@code wsguard demo} uses ({@code certs/dev/}); {@link #authority}
 * and {@link Authority#issue} let tests mint real certificates for real TLS servers and clients:
 *
 * <pre>{@code
 * DevCerts.Authority ca = DevCerts.authority(dir, "test-ca");
 * DevCerts.Issued server = ca.issue(dir, "server", List.of("localhost", "127.0.0.1"), KeyType.EC, KeyFormat.PKCS8);
 * }</pre>
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

    /** The key algorithm of an issued certificate. */
    public enum KeyType {
        /** RSA 2048. */
        RSA,
        /** EC on P-256 (secp256r1). */
        EC,
        /** Ed25519. */
        ED25519
    }

    /** How a private key is written to its PEM file. */
    public enum KeyFormat {
        /** {@code BEGIN PRIVATE KEY}: any key type. */
        PKCS8,
        /** {@code BEGIN RSA PRIVATE KEY}: RSA only. */
        PKCS1,
        /** {@code BEGIN EC PRIVATE KEY}: EC only. */
        SEC1
    }

    /**
     * The files {@link #ensure(Path)} made or found.
     *
     * @param caCertificate {@code ca.crt}, to trust in clients
     * @param caKey {@code ca.key}
     * @param certificate {@code server.crt}, the server certificate alone
     * @param privateKey {@code server.key}, PKCS#8
     */
    public record DevCertPaths(Path caCertificate, Path caKey, Path certificate, Path privateKey) {}

    /**
     * One issued certificate and where it was written.
     *
     * @param certificate the PEM file holding the certificate alone
     * @param privateKey the PEM file holding its key in the requested format
     * @param x509 the certificate itself, e.g. to compare serial numbers
     * @param keyPair its key pair
     */
    public record Issued(Path certificate, Path privateKey, X509Certificate x509, KeyPair keyPair) {}

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
        final DevCertPaths paths = new DevCertPaths(dir.resolve("ca.crt"), dir.resolve("ca.key"),
                                                    dir.resolve("server.crt"), dir.resolve("server.key"));
        try {
            Files.createDirectories(dir);
            Authority ca = readValidAuthority(paths.caCertificate(), paths.caKey());
            boolean newCa = false;
            if (ca == null) {
                ca = authority(dir, "ca", Instant.now(), DEV_VALIDITY);
                newCa = true;
            }
            if (newCa || !validLeaf(paths.certificate(), paths.privateKey(), ca)) {
                ca.issue(dir, "server", DEV_SANS, KeyType.EC, KeyFormat.PKCS8, Instant.now(), DEV_VALIDITY);
            }
            return paths;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write dev certificates to " + dir, e);
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
            final KeyPair keys = generate(KeyType.RSA);
            writeKey(paths.privateKey(), keys, KeyFormat.PKCS8);
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

    /**
     * Mints a CA and one leaf certificate signed by it into {@code dir}: {@code NAME-ca.crt},
     * {@code NAME-ca.key}, {@code NAME.crt} and {@code NAME.key}, valid from now for a day.
     */
    public static DevCertPaths issue(Path dir, String name, List<String> sans, KeyType type, KeyFormat format) {
        final Authority ca = authority(dir, name + "-ca");
        final Issued leaf = ca.issue(dir, name, sans, type, format);
        return new DevCertPaths(ca.certificatePath(), ca.keyPath(), leaf.certificate(), leaf.privateKey());
    }

    /** A new EC P-256 CA valid from now for a day, written to {@code NAME.crt} and {@code NAME.key} in {@code dir}. */
    public static Authority authority(Path dir, String name) {
        return authority(dir, name, Instant.now(), Duration.ofDays(1));
    }

    /** A new EC P-256 CA valid from {@code notBefore} for {@code validity}, written to {@code NAME.crt} and {@code NAME.key}. */
    public static Authority authority(Path dir, String name, Instant notBefore, Duration validity) {
        final KeyPair keys = generate(KeyType.EC);
        final X500Name subject = new X500Name("CN=" + name + ", O=wsguard dev");
        try {
            final JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            final X509v3CertificateBuilder builder = builder(subject, subject, notBefore, validity, keys)
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
            final X509Certificate cert = sign(builder, keys.getPrivate());
            final Path certPath = dir.resolve(name + ".crt");
            final Path keyPath = dir.resolve(name + ".key");
            Files.createDirectories(dir);
            writeCertificates(certPath, List.of(cert));
            writeKey(keyPath, keys, KeyFormat.PKCS8);
            return new Authority(cert, keys, certPath, keyPath);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write CA " + name + " to " + dir, e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot make CA " + name, e);
        }
    }

    /**
     * A certificate authority that can issue leaves.
     *
     * @param certificatePath where its certificate was written; the file to put in a trust bundle
     * @param keyPath where its PKCS#8 key was written
     */
    public record Authority(X509Certificate certificate, KeyPair keyPair, Path certificatePath, Path keyPath) {

        public Authority {
            requireNonNull(certificate, "certificate");
            requireNonNull(keyPair, "keyPair");
        }

        /** Issues a leaf valid from now for a day. */
        public Issued issue(Path dir, String name, List<String> sans, KeyType type, KeyFormat format) {
            return issue(dir, name, sans, type, format, Instant.now(), Duration.ofDays(1));
        }

        /**
         * Issues a leaf for the given SANs (DNS names or IP literals), usable both as server and as
         * client certificate, and writes {@code NAME.crt} (the leaf alone) and {@code NAME.key}
         * into {@code dir}. A {@code notBefore} in the past with a short validity gives an
         * expired certificate.
         *
         * @throws IllegalArgumentException for PKCS#1 with a non-RSA key or SEC1 with a non-EC key
         */
        public Issued issue(Path dir, String name, List<String> sans, KeyType type, KeyFormat format,
                            Instant notBefore, Duration validity) {
            checkFormat(type, format);
            final KeyPair keys = generate(type);
            final X500Name subject = new X500Name("CN=" + (sans.isEmpty() ? name : sans.get(0)) + ", O=wsguard dev");
            final X500Name issuer = X500Name.getInstance(certificate.getSubjectX500Principal().getEncoded());
            try {
                final JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
                final int usage = type == KeyType.RSA ? KeyUsage.digitalSignature | KeyUsage.keyEncipherment
                                                      : KeyUsage.digitalSignature;
                final X509v3CertificateBuilder builder = builder(issuer, subject, notBefore, validity, keys)
                        .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                        .addExtension(Extension.keyUsage, true, new KeyUsage(usage))
                        .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(
                                new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}))
                        .addExtension(Extension.subjectKeyIdentifier, false,
                                      ext.createSubjectKeyIdentifier(keys.getPublic()))
                        .addExtension(Extension.authorityKeyIdentifier, false,
                                      ext.createAuthorityKeyIdentifier(certificate));
                if (!sans.isEmpty()) {
                    builder.addExtension(Extension.subjectAlternativeName, false, generalNames(sans));
                }
                final X509Certificate cert = sign(builder, keyPair.getPrivate());
                final Path certPath = dir.resolve(name + ".crt");
                final Path keyPath = dir.resolve(name + ".key");
                Files.createDirectories(dir);
                writeCertificates(certPath, List.of(cert));
                writeKey(keyPath, keys, format);
                return new Issued(certPath, keyPath, cert, keys);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + name + " to " + dir, e);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("cannot issue " + name, e);
            }
        }
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

    /** Writes a private key in the given PEM form, owner-readable only, replacing the file atomically. */
    public static void writeKey(Path file, KeyPair keys, KeyFormat format) throws IOException {
        final PemObject pem = switch (format) {
            case PKCS8 -> new JcaPKCS8Generator(keys.getPrivate(), null).generate();
            // PKCS#1 is the RSAPrivateKey structure that PKCS#8 wraps.
            case PKCS1 -> new PemObject("RSA PRIVATE KEY",
                                        PrivateKeyInfo.getInstance(keys.getPrivate().getEncoded())
                                                      .parsePrivateKey().toASN1Primitive().getEncoded());
            case SEC1 -> new PemObject("EC PRIVATE KEY", sec1(keys));
        };
        final StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            writer.writeObject(pem);
        }
        writeAtomically(file, out.toString(), true);
    }

    /** Writes a PKCS#12 key store holding one key entry per issued certificate, aliases {@code NAME-0, NAME-1, …}. */
    public static void writePkcs12(Path file, char[] password, List<Issued> entries) throws IOException {
        try {
            final KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            for (int i = 0; i < entries.size(); i++) {
                final Issued entry = entries.get(i);
                ks.setKeyEntry("key-" + i, entry.keyPair().getPrivate(), password,
                               new X509Certificate[] {entry.x509()});
            }
            try (OutputStream out = Files.newOutputStream(file)) {
                ks.store(out, password);
            }
            restrict(file);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot write PKCS#12 " + file, e);
        }
    }

    /**
     * SEC1 {@code ECPrivateKey} with the curve and the public point, as openssl writes it: BouncyCastle's
     * generic writer leaves both out when converting from a JDK key, and a SEC1 key without its curve
     * cannot be read back.
     */
    private static byte[] sec1(KeyPair keys) throws IOException {
        final PrivateKeyInfo info = PrivateKeyInfo.getInstance(keys.getPrivate().getEncoded());
        final SubjectPublicKeyInfo pub = SubjectPublicKeyInfo.getInstance(keys.getPublic().getEncoded());
        final org.bouncycastle.asn1.sec.ECPrivateKey inner =
                org.bouncycastle.asn1.sec.ECPrivateKey.getInstance(info.parsePrivateKey());
        final ASN1Encodable curve = ASN1ObjectIdentifier.getInstance(pub.getAlgorithm().getParameters());
        return new org.bouncycastle.asn1.sec.ECPrivateKey(256, inner.getKey(),
                                                          new DERBitString(pub.getPublicKeyData().getBytes()), curve)
                .getEncoded();
    }

    private static void checkFormat(KeyType type, KeyFormat format) {
        if (format == KeyFormat.PKCS1 && type != KeyType.RSA) {
            throw new IllegalArgumentException("format: PKCS1 (expected: an RSA key, got " + type + ")");
        }
        if (format == KeyFormat.SEC1 && type != KeyType.EC) {
            throw new IllegalArgumentException("format: SEC1 (expected: an EC key, got " + type + ")");
        }
    }

    private static KeyPair generate(KeyType type) {
        try {
            final KeyPairGenerator gen;
            switch (type) {
                case RSA -> {
                    gen = KeyPairGenerator.getInstance("RSA");
                    gen.initialize(2048, RANDOM);
                }
                case EC -> {
                    gen = KeyPairGenerator.getInstance("EC");
                    gen.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
                }
                default -> gen = KeyPairGenerator.getInstance("Ed25519");
            }
            return gen.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot generate a " + type + " key", e);
        }
    }

    private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, Instant notBefore,
                                                    Duration validity, KeyPair keys) {
        // Positive 64-bit random serial: unique enough for tests that tell certificates apart by serial.
        final BigInteger serial = new BigInteger(64, RANDOM).setBit(62);
        return new JcaX509v3CertificateBuilder(issuer, serial, Date.from(notBefore),
                                               Date.from(notBefore.plus(validity)), subject, keys.getPublic());
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
            throws GeneralSecurityException {
        final String algorithm = switch (signer.getAlgorithm()) {
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
            names.add(IPAddress.isValid(san) ? new GeneralName(GeneralName.iPAddress, san)
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

    private static void restrict(Path file) throws IOException {
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        }
    }

    /** The CA in these files if both parse, belong together and the certificate is valid now; otherwise null. */
    private static Authority readValidAuthority(Path certFile, Path keyFile) {
        if (!Files.isRegularFile(certFile) || !Files.isRegularFile(keyFile)) {
            return null;
        }
        try {
            final X509Certificate cert = readCertificate(certFile);
            final KeyPair keys = readKeyPair(keyFile, cert);
            cert.checkValidity();
            return keys == null ? null : new Authority(cert, keys, certFile, keyFile);
        } catch (GeneralSecurityException | RuntimeException e) {
            return null;
        }
    }

    private static boolean validLeaf(Path certFile, Path keyFile, Authority ca) {
        if (!Files.isRegularFile(certFile) || !Files.isRegularFile(keyFile)) {
            return false;
        }
        try {
            final X509Certificate cert = readCertificate(certFile);
            cert.checkValidity();
            cert.verify(ca.certificate().getPublicKey());
            return readKeyPair(keyFile, cert) != null;
        } catch (CertificateExpiredException | CertificateNotYetValidException e) {
            return false;
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }

    private static X509Certificate readCertificate(Path file) {
        return Pem.certificates(file).get(0);
    }

    /** The key pair in the file if its private key is the certificate's; otherwise null. */
    private static KeyPair readKeyPair(Path file, X509Certificate cert) {
        final PrivateKey key = Pem.privateKey(file);
        return Pem.belongTogether(key, cert.getPublicKey()) ? new KeyPair(cert.getPublicKey(), key) : null;
    }
}
