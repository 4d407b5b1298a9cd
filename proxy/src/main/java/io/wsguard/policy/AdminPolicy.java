package io.wsguard.policy;

import java.util.Optional;

/**
 * {@code admin}: the admin port (README, Admin port).
 *
 * @param host defaults to {@code 127.0.0.1}
 * @param port defaults to 9090; 0 binds an ephemeral port
 * @param token when present and not empty, {@code /admin/*} needs {@code Authorization: Bearer <token>}
 */
public record AdminPolicy(String host, int port, Optional<Secret> token) {}
