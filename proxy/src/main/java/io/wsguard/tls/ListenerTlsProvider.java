package io.wsguard.tls;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.KeyStoreException;
import java.security.NoSuchAlgorithmException;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Collections;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import org.conscrypt.Conscrypt;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The JSSE provider of the listeners' TLS: Conscrypt (BoringSSL, native) when its library loads on
 * this platform, the JDK's own otherwise.
 *
 * <p>Why: a full handshake in the JDK 17 provider costs about 3x NGINX's CPU (RSA signatures on
 * {@code BigInteger}, x25519 in pure Java); BoringSSL does both in assembly. See README, Performance.
 *
 * <p>Only the listeners' {@code SSLContext} comes from Conscrypt, and the provider is never
 * registered with {@link java.security.Security}: the JVM-wide defaults (the upstream client's TLS,
 * JWT signature checks, key stores, key and trust managers) stay the JDK's. The key manager and the
 * trust manager handed to Conscrypt are still Jetty's and the JDK's, so SNI selection
 * ({@link KeyMaterial}), client certificates and reloads work as before. A listener with an
 * Ed25519 certificate, which Conscrypt cannot serve, stays on the JDK provider (decided at every
 * load, so a reload that adds or removes one switches).
 *
 * <p>If the native library cannot be loaded (an OS or CPU the uber jar has no build for, a
 * {@code noexec} temp dir), one WARN is logged and the JDK provider is used. The system property
 * {@value #PROPERTY}{@code =jdk} forces the JDK provider (e.g. where only a FIPS-configured JDK
 * provider may be used); nothing in the policy chooses it.
 */
final class ListenerTlsProvider {

    /** {@code jdk} forces the JDK provider; anything else (or unset): Conscrypt when it loads. */
    static final String PROPERTY = "wsguard.tls.provider";

    private static final Logger LOG = LoggerFactory.getLogger(ListenerTlsProvider.class);

    private ListenerTlsProvider() {}

    /** Resolved once per JVM, on the first listener, so the choice is logged once. */
    private static final class Chosen {
        static final Optional<Provider> PROVIDER = choose(System.getProperty(PROPERTY), ListenerTlsProvider::conscrypt);
    }

    /** The provider every listener uses; empty = the JDK's default. */
    static Optional<Provider> current() {
        return Chosen.PROVIDER;
    }

    /**
     * @param setting the system property's value, may be null
     * @param loader makes the Conscrypt provider; may throw anything a missing native library throws
     */
    static Optional<Provider> choose(String setting, Supplier<Provider> loader) {
        if (setting != null && setting.trim().toLowerCase(Locale.ROOT).equals("jdk")) {
            LOG.info("listener TLS: JDK provider ({}=jdk)", PROPERTY);
            return Optional.empty();
        }
        try {
            final Provider provider = loader.get();
            LOG.info("listener TLS: {} provider ({})", provider.getName(), provider.getInfo());
            return Optional.of(provider);
        } catch (RuntimeException | LinkageError e) {
            LOG.warn("listener TLS: Conscrypt (BoringSSL) is not available on this platform ({}); using the JDK provider,"
                     + " which costs more CPU per handshake", e.toString());
            return Optional.empty();
        }
    }

    private static Provider conscrypt() {
        Conscrypt.checkAvailability(); // throws the UnsatisfiedLinkError behind a missing native library
        return Conscrypt.newProvider();
    }

    /** Jetty's server factory with its {@code SSLContext} (and only that) taken from {@code provider}. */
    static SslContextFactory.Server newFactory(Optional<Provider> provider) {
        return provider.<SslContextFactory.Server>map(ProviderFactory::new).orElseGet(SslContextFactory.Server::new);
    }

    /** Key algorithms Conscrypt serves; an Ed25519 server key fails its handshakes (internal_error). */
    static final Set<String> SERVED_KEYS = Set.of("RSA", "EC");

    /** The first certificate whose key Conscrypt cannot serve, if any: such a listener stays on the JDK provider. */
    static Optional<String> unservedKey(KeyStore store) {
        if (store == null) {
            return Optional.empty();
        }
        try {
            for (String alias : Collections.list(store.aliases())) {
                final Certificate certificate = store.getCertificate(alias);
                if (store.isKeyEntry(alias) && certificate != null
                    && !SERVED_KEYS.contains(certificate.getPublicKey().getAlgorithm())) {
                    return Optional.of(certificate.getPublicKey().getAlgorithm());
                }
            }
        } catch (KeyStoreException e) {
            return Optional.of("unreadable key store");
        }
        return Optional.empty();
    }

    private static final class ProviderFactory extends SslContextFactory.Server {

        private final Provider provider;
        /** What {@link KeyMaterial#applyTo} set last; Jetty's getKeyStore() is unusable inside a reload. */
        private volatile KeyStore keyStore;

        ProviderFactory(Provider provider) {
            this.provider = provider;
        }

        @Override
        public void setKeyStore(KeyStore keyStore) {
            this.keyStore = keyStore;
            super.setKeyStore(keyStore);
        }

        /** Called by every (re)load of the factory, after the key store is set. */
        @Override
        protected SSLContext getSSLContextInstance() throws NoSuchAlgorithmException {
            final Optional<String> unserved = unservedKey(keyStore);
            if (unserved.isPresent()) {
                LOG.info("listener TLS: JDK provider for this listener: {} does not serve its {} certificate",
                         provider.getName(), unserved.get());
                return super.getSSLContextInstance();
            }
            return SSLContext.getInstance(getProtocol(), provider);
        }

        /** Jetty's (SNI-selecting) key managers, handing Conscrypt keys it need not re-import per handshake. */
        @Override
        protected KeyManager[] getKeyManagers(KeyStore store) throws Exception {
            final KeyManager[] managers = super.getKeyManagers(store);
            if (managers == null || unservedKey(keyStore).isPresent()) {
                return managers;
            }
            final KeyManager[] wrapped = managers.clone();
            for (int i = 0; i < wrapped.length; i++) {
                if (wrapped[i] instanceof X509ExtendedKeyManager manager) {
                    wrapped[i] = new NativeKeys(manager, provider);
                }
            }
            return wrapped;
        }
    }

    /**
     * Hands Conscrypt its own (BoringSSL) form of each private key, converted once per load.
     *
     * <p>Given a JDK key, Conscrypt encodes it to PKCS#8 and parses it into a new native key on
     * every handshake; for RSA that also recomputes the Montgomery constants each time. A key that
     * is already Conscrypt's is used as it is. A key Conscrypt cannot convert is handed on unchanged.
     */
    static final class NativeKeys extends X509ExtendedKeyManager {

        private final X509ExtendedKeyManager delegate;
        private final Provider provider;
        private final Map<String, PrivateKey> keys = new ConcurrentHashMap<>();

        NativeKeys(X509ExtendedKeyManager delegate, Provider provider) {
            this.delegate = delegate;
            this.provider = provider;
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            return alias == null ? null : keys.computeIfAbsent(alias, a -> toNative(delegate.getPrivateKey(a)));
        }

        private PrivateKey toNative(PrivateKey key) {
            if (key == null || key.getEncoded() == null) {
                return key;
            }
            try {
                return KeyFactory.getInstance(key.getAlgorithm(), provider)
                        .generatePrivate(new PKCS8EncodedKeySpec(key.getEncoded()));
            } catch (GeneralSecurityException | RuntimeException e) {
                LOG.debug("listener TLS: {} key stays the JDK's: {}", key.getAlgorithm(), e.toString());
                return key;
            }
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return delegate.chooseEngineServerAlias(keyType, issuers, engine);
        }

        @Override
        public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
            return delegate.chooseEngineClientAlias(keyType, issuers, engine);
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            return delegate.chooseServerAlias(keyType, issuers, socket);
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return delegate.chooseClientAlias(keyType, issuers, socket);
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            return delegate.getServerAliases(keyType, issuers);
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return delegate.getClientAliases(keyType, issuers);
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            return delegate.getCertificateChain(alias);
        }
    }
}
