package io.wsguard.policy;

import java.util.Optional;

/**
 * {@code admin}: the admin port (README, Admin port).
 *
 * @param host defaults to {@code 127.0.0.1}
 * @param port defaults to 9090; 0 binds an ephemeral port
 * @param token when present and not empty, {@code /admin/*} needs {@code Authorization: Bearer <token>}
 * @param probes {@code admin.probes}: a second port serving only {@code /healthz}, {@code /readyz} and
 *     {@code /metrics}; absent by default
 */
public record AdminPolicy(String host, int port, Optional<Secret> token, Optional<Probes> probes) {

    /** An admin port without a probes port. */
    public AdminPolicy(String host, int port, Optional<Secret> token) {
        this(host, port, token, Optional.empty());
    }

    /**
     * {@code admin.probes}: where the kubelet and Prometheus reach health, readiness and metrics
     * without reaching {@code /admin/*} or the dashboard, which stay on the admin port.
     *
     * @param host defaults to {@code 0.0.0.0}: the port exists to be reached from other machines
     * @param port defaults to 9091; 0 binds an ephemeral port
     */
    public record Probes(String host, int port) {}
}
