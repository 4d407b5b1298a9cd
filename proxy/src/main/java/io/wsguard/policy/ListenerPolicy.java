package io.wsguard.policy;

import java.util.Optional;

/**
 * {@code listeners[]}: one port clients connect to.
 *
 * @param host defaults to {@code 0.0.0.0}
 * @param port 0 binds an ephemeral port (tests); the ready line says which
 * @param tls absent: plain {@code ws://}
 */
public record ListenerPolicy(String host, int port, Optional<TlsPolicy> tls) {}
