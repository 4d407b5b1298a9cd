/**
 * TLS at both ends of the proxy: {@link io.wsguard.tls.ServerTls} turns {@code listeners[].tls}
 * (PEM pairs or a PKCS#12 key store, several certificates chosen by SNI, protocol floor, client
 * certificates) into a Jetty {@code SslContextFactory.Server} before the listener opens;
 * {@link io.wsguard.tls.CertificateReloader} swaps in renewed certificates while it runs; and
 * {@link io.wsguard.tls.UpstreamTls} decides whom the proxy trusts on {@code wss://} upstream
 * connections. Every configuration mistake is a {@link io.wsguard.tls.TlsConfigException} naming
 * the policy field, found at check time, never at the first handshake. {@link io.wsguard.tls.Pem}
 * is the one reader of PEM files, for {@code auth} and {@code demo} too; its
 * {@link io.wsguard.tls.PemException} is wrapped by each caller in its own convention. Depends only
 * on {@code policy}.
 */
package io.wsguard.tls;
