package io.wsguard.testing;

import static java.util.Objects.requireNonNull;

import io.wsguard.demo.DevCerts;
import io.wsguard.demo.DevCerts.DevCertPaths;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.sec.ECPrivateKey;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.util.io.pem.PemObject;

/**
 * Test certificates: a throw-away CA that issues RSA, EC and Ed25519 leaves, their keys written in
 * any PEM form wsguard reads (PKCS#8, PKCS#1, SEC1), and PKCS#12 key stores, for real TLS servers
 * and clients. Built on {@link DevCerts}' certificate primitives, the ones {@code wsguard demo}
 * uses, so that tests and the demo make certificates alike.
 *
 * <pre>{@code
 * TestCerts.Authority ca = TestCerts.authority(dir, "test-ca");
 * TestCerts.Issued server = ca.issue(dir, "server", List.of("localhost", "127.0.0.1"), KeyType.EC, KeyFormat.PKCS8);
 * }</pre>
 */
public final class TestCerts {

    private TestCerts() {}

    /** The key algorithm of an issued certificate. */
    public enum KeyType {
        /** RSA 2048. */
        RSA("RSA"),
        /** EC on P-256 (secp256r1). */
        EC("EC"),
        /** Ed25519. */
        ED25519("Ed25519");

        private final String jca;

        KeyType(String jca) {
            this.jca = jca;
        }
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
     * One issued certificate and where it was written.
     *
     * @param certificate the PEM file holding the certificate alone
     * @param privateKey the PEM file holding its key in the requested format
     * @param x509 the certificate itself, e.g. to compare serial numbers
     * @param keyPair its key pair
     */
    public record Issued(Path certificate, Path privateKey, X509Certificate x509, KeyPair keyPair) {}

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

    /** A CA as {@link #authority(Path, String)} makes, valid from {@code notBefore} for {@code validity}. */
    public static Authority authority(Path dir, String name, Instant notBefore, Duration validity) {
        final KeyPair keys = DevCerts.keyPair("EC");
        try {
            final X509Certificate cert = DevCerts.caCertificate(name, keys, notBefore, validity);
            final Path certPath = dir.resolve(name + ".crt");
            final Path keyPath = dir.resolve(name + ".key");
            Files.createDirectories(dir);
            DevCerts.writeCertificates(certPath, List.of(cert));
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
        public Issued issue(
                Path dir,
                String name,
                List<String> sans,
                KeyType type,
                KeyFormat format,
                Instant notBefore,
                Duration validity) {
            checkFormat(type, format);
            final KeyPair keys = DevCerts.keyPair(type.jca);
            try {
                final X509Certificate cert = DevCerts.leafCertificate(
                        certificate, keyPair.getPrivate(), name, sans, keys, notBefore, validity);
                final Path certPath = dir.resolve(name + ".crt");
                final Path keyPath = dir.resolve(name + ".key");
                Files.createDirectories(dir);
                DevCerts.writeCertificates(certPath, List.of(cert));
                writeKey(keyPath, keys, format);
                return new Issued(certPath, keyPath, cert, keys);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + name + " to " + dir, e);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("cannot issue " + name, e);
            }
        }
    }

    /** Writes a private key in the given PEM form, owner-readable only, replacing the file atomically. */
    public static void writeKey(Path file, KeyPair keys, KeyFormat format) throws IOException {
        final PemObject pem =
                switch (format) {
                    case PKCS8 -> DevCerts.pkcs8(keys.getPrivate());
                    // PKCS#1 is the RSAPrivateKey structure that PKCS#8 wraps.
                    case PKCS1 ->
                        new PemObject(
                                "RSA PRIVATE KEY",
                                PrivateKeyInfo.getInstance(keys.getPrivate().getEncoded())
                                        .parsePrivateKey()
                                        .toASN1Primitive()
                                        .getEncoded());
                    case SEC1 -> new PemObject("EC PRIVATE KEY", sec1(keys));
                };
        DevCerts.writeKey(file, pem);
    }

    /** Writes a PKCS#12 key store holding one key entry per issued certificate, aliases {@code NAME-0, NAME-1, …}. */
    public static void writePkcs12(Path file, char[] password, List<Issued> entries) throws IOException {
        try {
            final KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            for (int i = 0; i < entries.size(); i++) {
                final Issued entry = entries.get(i);
                ks.setKeyEntry(
                        "key-" + i, entry.keyPair().getPrivate(), password, new X509Certificate[] {entry.x509()});
            }
            try (OutputStream out = Files.newOutputStream(file)) {
                ks.store(out, password);
            }
            DevCerts.restrict(file);
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
        final SubjectPublicKeyInfo pub =
                SubjectPublicKeyInfo.getInstance(keys.getPublic().getEncoded());
        final ECPrivateKey inner = ECPrivateKey.getInstance(info.parsePrivateKey());
        final ASN1Encodable curve =
                ASN1ObjectIdentifier.getInstance(pub.getAlgorithm().getParameters());
        return new ECPrivateKey(
                        256,
                        inner.getKey(),
                        new DERBitString(pub.getPublicKeyData().getBytes()),
                        curve)
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
}
