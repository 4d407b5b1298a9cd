package io.wsguard.tls;

import io.wsguard.policy.Secret;
import io.wsguard.policy.TlsPolicy;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.UnrecoverableKeyException;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLSession;
import org.eclipse.jetty.util.ssl.SniX509ExtendedKeyManager;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.ssl.X509;

/**
 * Everything a {@link TlsPolicy} points at, read and checked: one in-memory PKCS#12 key store
 * with one alias per certificate, in policy order, and the optional client-CA trust store.
 *
 * <p>Built in full before anything is handed to Jetty, so that a bad file never reaches a running
 * listener: {@link ServerTls} applies it once, {@link CertificateReloader} on every change.
 */
record KeyMaterial(KeyStore keyStore, String password, List<String> aliases, Optional<KeyStore> trustStore) {

    private static final SecureRandom RANDOM = new SecureRandom();

    KeyMaterial {
        aliases = List.copyOf(aliases);
    }

    /** Reads every file of the policy; throws {@link TlsConfigException} naming the first field at fault. */
    static KeyMaterial load(TlsPolicy policy) {
        // The in-memory store needs a password; it never leaves this object, so a random one will do.
        final byte[] bytes = new byte[18];
        RANDOM.nextBytes(bytes);
        final String password = Base64.getEncoder().encodeToString(bytes);
        final KeyStore store = emptyStore();
        final List<String> aliases = new ArrayList<>();

        final List<TlsPolicy.KeyPairPolicy> pairs = policy.certificates();
        for (int i = 0; i < pairs.size(); i++) {
            final TlsPolicy.KeyPairPolicy pair = pairs.get(i);
            final String certField = "certificates[" + i + "].certificate";
            final String keyField = "certificates[" + i + "].privateKey";
            final List<X509Certificate> chain;
            try {
                chain = Pem.certificates(pair.certificate());
                Pem.requireChainInOrder(chain, pair.certificate());
            } catch (PemException e) {
                throw new TlsConfigException(certField, e);
            }
            final PrivateKey key;
            try {
                key = Pem.privateKey(pair.privateKey());
            } catch (PemException e) {
                throw new TlsConfigException(keyField, e);
            }
            if (!Pem.belongTogether(key, chain.get(0).getPublicKey())) {
                throw new TlsConfigException(
                        keyField,
                        Pem.quote(pair.privateKey()) + " (" + key.getAlgorithm()
                                + ") is not the key of the first certificate in " + Pem.quote(pair.certificate())
                                + " (expected: the private key of that certificate)");
            }
            Pem.warnIfNotValidNow(chain.get(0), certField, pair.certificate());
            final String alias = "wsguard-" + aliases.size();
            setKeyEntry(store, alias, key, password, chain.toArray(X509Certificate[]::new), keyField);
            aliases.add(alias);
        }

        if (policy.keyStore().isPresent()) {
            addKeyStore(policy.keyStore().get(), policy.keyStorePassword(), store, password, aliases);
        }
        if (aliases.isEmpty()) {
            throw new TlsConfigException(
                    "certificate",
                    "no certificate configured (expected: certificate + privateKey, or keyStore + keyStorePassword)");
        }

        final Optional<KeyStore> trust = policy.clientCAs().map(file -> trustStore(file, "clientCAs"));
        if (policy.clientAuth() != TlsPolicy.ClientAuth.NONE && trust.isEmpty()) {
            throw new TlsConfigException(
                    "clientCAs",
                    "missing (expected: a PEM bundle of the CAs that sign client" + " certificates when clientAuth is "
                            + policy.clientAuth().name().toLowerCase(java.util.Locale.ROOT) + ")");
        }
        return new KeyMaterial(store, password, aliases, trust);
    }

    /** Hands this material to a factory: at creation, or inside {@code SslContextFactory.reload}. */
    void applyTo(SslContextFactory.Server ssl) {
        ssl.setKeyStore(keyStore);
        ssl.setKeyStorePassword(password);
        ssl.setKeyManagerPassword(password);
        trustStore.ifPresent(ssl::setTrustStore);
        ssl.setSNISelector(new FirstPairByDefault(ssl, aliases));
    }

    /** Files the material was read from: what {@link CertificateReloader} watches. */
    static List<Path> files(TlsPolicy policy) {
        final List<Path> files = new ArrayList<>();
        for (TlsPolicy.KeyPairPolicy pair : policy.certificates()) {
            files.add(pair.certificate());
            files.add(pair.privateKey());
        }
        policy.keyStore().ifPresent(files::add);
        policy.clientCAs().ifPresent(files::add);
        return files;
    }

    /** A trust store holding every certificate of a PEM bundle, for client or upstream verification. */
    static KeyStore trustStore(Path file, String field) {
        final List<X509Certificate> certs;
        try {
            certs = Pem.certificates(file);
        } catch (PemException e) {
            throw new TlsConfigException(field, e);
        }
        try {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            for (int i = 0; i < certs.size(); i++) {
                store.setCertificateEntry("ca-" + i, certs.get(i));
            }
            return store;
        } catch (IOException | GeneralSecurityException e) {
            throw new TlsConfigException(field, "cannot build a trust store from " + Pem.quote(file), e);
        }
    }

    /** Copies every key entry of a PKCS#12 file into {@code store}, in the file's order. */
    private static void addKeyStore(
            Path file, Optional<Secret> secret, KeyStore store, String password, List<String> aliases) {
        if (secret.isEmpty()) {
            throw new TlsConfigException(
                    "keyStorePassword",
                    "missing (expected: the password of " + Pem.quote(file) + ", e.g. ${KS_PASSWORD})");
        }
        final char[] filePassword = secret.get().value().toCharArray();
        final KeyStore source;
        try (InputStream in = Files.newInputStream(file)) {
            source = KeyStore.getInstance("PKCS12");
            source.load(in, filePassword);
        } catch (NoSuchFileException e) {
            throw new TlsConfigException(
                    "keyStore", Pem.quote(file) + " does not exist (expected: a PKCS#12 key store)", e);
        } catch (AccessDeniedException e) {
            throw new TlsConfigException(
                    "keyStore",
                    Pem.quote(file) + " is not readable by this user" + " (expected: a readable PKCS#12 key store)",
                    e);
        } catch (IOException e) {
            // The JDK reports a wrong password as an IOException caused by UnrecoverableKeyException.
            if (e.getCause() instanceof UnrecoverableKeyException) {
                throw new TlsConfigException(
                        "keyStorePassword",
                        "does not open " + Pem.quote(file) + " (expected: the password of that key store)",
                        e);
            }
            throw new TlsConfigException(
                    "keyStore",
                    Pem.quote(file) + " is not a PKCS#12 key store"
                            + " (expected: a .p12 file, e.g. from openssl pkcs12 -export)",
                    e);
        } catch (GeneralSecurityException e) {
            throw new TlsConfigException(
                    "keyStore", "cannot read " + Pem.quote(file) + " (expected: a PKCS#12 key store)", e);
        }
        final int before = aliases.size();
        try {
            for (String alias : Collections.list(source.aliases())) {
                if (!source.isKeyEntry(alias)) {
                    continue;
                }
                final Key key;
                try {
                    key = source.getKey(alias, filePassword);
                } catch (UnrecoverableKeyException e) {
                    throw new TlsConfigException(
                            "keyStorePassword",
                            "does not open the key '" + alias + "' in " + Pem.quote(file)
                                    + " (expected: key entries protected by the key-store password)",
                            e);
                }
                final Certificate[] chain = source.getCertificateChain(alias);
                if (!(key instanceof PrivateKey privateKey)
                        || chain == null
                        || chain.length == 0
                        || !(chain[0] instanceof X509Certificate leaf)) {
                    continue;
                }
                Pem.warnIfNotValidNow(leaf, "keyStore", file);
                final String ours = "wsguard-" + aliases.size();
                setKeyEntry(store, ours, privateKey, password, chain, "keyStore");
                aliases.add(ours);
            }
        } catch (GeneralSecurityException e) {
            throw new TlsConfigException("keyStore", "cannot read the entries of " + Pem.quote(file), e);
        }
        if (aliases.size() == before) {
            throw new TlsConfigException(
                    "keyStore",
                    Pem.quote(file) + " holds no private key"
                            + " (expected: at least one key entry with its certificate chain)");
        }
    }

    private static KeyStore emptyStore() {
        try {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            return store;
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no PKCS12 key store", e);
        }
    }

    private static void setKeyEntry(
            KeyStore store, String alias, PrivateKey key, String password, Certificate[] chain, String field) {
        try {
            store.setKeyEntry(alias, key, password.toCharArray(), chain);
        } catch (GeneralSecurityException e) {
            throw new TlsConfigException(
                    field, "cannot use the " + key.getAlgorithm() + " key (expected: RSA, EC or Ed25519)", e);
        }
    }

    /**
     * Jetty's SNI choice, made deterministic: a name that matches a certificate gets it (Jetty
     * prefers exact over wildcard matches), and a handshake without SNI or with an unknown name
     * gets the first pair of the policy that fits the key type being asked for. Left to the JDK,
     * that choice is arbitrary (notes §2.6).
     */
    private static final class FirstPairByDefault implements SniX509ExtendedKeyManager.SniSelector {

        private final SslContextFactory.Server jetty;
        private final List<String> order;

        FirstPairByDefault(SslContextFactory.Server jetty, List<String> order) {
            this.jetty = jetty;
            this.order = order;
        }

        @Override
        public String sniSelect(
                String keyType, Principal[] issuers, SSLSession session, String sniHost, Collection<X509> certificates)
                throws SSLHandshakeException {
            final String chosen = jetty.sniSelect(keyType, issuers, session, sniHost, certificates);
            if (!SniX509ExtendedKeyManager.SniSelector.DELEGATE.equals(chosen)) {
                // An alias that matched the name, or null: the name matches a certificate of another key type.
                return chosen;
            }
            for (String alias : order) {
                for (X509 candidate : certificates) {
                    if (alias.equals(candidate.getAlias())) {
                        return alias;
                    }
                }
            }
            return SniX509ExtendedKeyManager.SniSelector.DELEGATE;
        }
    }
}
