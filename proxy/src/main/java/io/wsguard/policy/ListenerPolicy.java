package io.wsguard.policy;

import java.util.Optional;

/**
 * {@code listeners[]}: one port clients connect to.
 *
 * @param name what {@code routes[].match.listeners} calls it; unique; defaults to the scheme and the
 *     port, {@code ws-8080} or {@code wss-8443}
 * @param host defaults to {@code 0.0.0.0}
 * @param port 0 binds an ephemeral port (tests); the ready line says which
 * @param tls absent: plain {@code ws://}
 */
public record ListenerPolicy(String name, String host, int port, Optional<TlsPolicy> tls) {

    /** Whether every client of this listener has shown a certificate from its {@code clientCAs}. */
    public boolean requiresClientCertificate() {
        return tls.isPresent() && tls.get().clientAuth() == TlsPolicy.ClientAuth.REQUIRED;
    }

    /** Whether clients of this listener may show a certificate at all ({@code clientAuth} optional or required). */
    public boolean asksForClientCertificate() {
        return tls.isPresent() && tls.get().clientAuth() != TlsPolicy.ClientAuth.NONE;
    }
}
