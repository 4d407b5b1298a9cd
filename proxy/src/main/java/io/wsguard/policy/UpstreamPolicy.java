package io.wsguard.policy;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code routes[].upstream}: the WebSocket servers a route relays to.
 *
 * @param targets one or more {@code ws://} or {@code wss://} URIs
 * @param balance defaults to {@code round-robin}
 * @param connectTimeout defaults to 5s; covers the TCP connect, TLS and the upgrade of one target
 * @param tls for {@code wss://} targets
 * @param headers defaults to forwarding only the defaults
 */
public record UpstreamPolicy(
        List<URI> targets,
        Balance balance,
        Duration connectTimeout,
        Optional<UpstreamTlsPolicy> tls,
        HeadersPolicy headers) {

    public UpstreamPolicy {
        targets = List.copyOf(targets);
    }

    /** {@code upstream.balance}. */
    public enum Balance {
        ROUND_ROBIN,
        LEAST_CONNECTIONS
    }

    /**
     * {@code upstream.tls}.
     *
     * @param trustedCAs PEM bundle; absent: the JVM's default trust store
     * @param verifyHostname defaults to true
     */
    public record UpstreamTlsPolicy(Optional<Path> trustedCAs, boolean verifyHostname) {}

    /**
     * {@code upstream.headers}.
     *
     * @param forward request headers copied to the upstream besides the defaults (query string,
     *     subprotocols, X-Forwarded-*)
     * @param set headers set on the upstream request; values may hold {@code ${jwt.CLAIM}}
     * @param remove headers never forwarded
     */
    public record HeadersPolicy(List<String> forward, Map<String, String> set, List<String> remove) {
        public HeadersPolicy {
            forward = List.copyOf(forward);
            set = Map.copyOf(set);
            remove = List.copyOf(remove);
        }
    }
}
