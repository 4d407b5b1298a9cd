package io.wsguard.policy;

import java.time.Duration;
import java.util.Optional;

/**
 * {@code routes[].limits}.
 *
 * @param handshakesPerIp {@code handshakes.perIp}
 * @param connectionsPerIp {@code connections.perIp}
 * @param connectionsPerSubject {@code connections.perSubject}
 * @param messagesPerConnection {@code messages.perConnection}
 * @param messagesPerSubject {@code messages.perSubject}
 * @param bytesPerConnection {@code bytes.perConnection} (a byte rate such as {@code 1MiB/s})
 * @param bytesPerSubject {@code bytes.perSubject}: a byte rate shared by all of a token subject's connections
 * @param onExceed defaults to {@code close}
 * @param idleTimeout defaults to 10m
 * @param maxLifetime defaults to 24h
 */
public record LimitsPolicy(
        Optional<RateLimitPolicy> handshakesPerIp,
        Optional<Integer> connectionsPerIp,
        Optional<Integer> connectionsPerSubject,
        Optional<RateLimitPolicy> messagesPerConnection,
        Optional<RateLimitPolicy> messagesPerSubject,
        Optional<RateLimitPolicy> bytesPerConnection,
        Optional<RateLimitPolicy> bytesPerSubject,
        Action onExceed,
        Duration idleTimeout,
        Duration maxLifetime) {

    /**
     * {@code { rate: 10/s, burst: 20 }}.
     *
     * @param burst defaults to the rate's amount
     */
    public record RateLimitPolicy(Rate rate, long burst) {}
}
