package io.wsguard.policy;

import io.wsguard.check.Mode;
import java.util.Optional;

/**
 * {@code routes[]}: which requests it takes, where it sends them, and what it checks on the way.
 *
 * @param mode defaults to {@code enforce}
 * @param origin absent: only requests with no Origin, or whose Origin is on the Host's host and port (docs/policy.md)
 * @param auth must be given: {@code auth: none} or {@code auth: {jwt: …}}
 * @param limits defaults apply even when absent (idleTimeout 10m, maxLifetime 24h)
 * @param messages defaults apply even when absent (maxSize 64KiB, compression deny)
 */
public record RoutePolicy(
        String name,
        MatchPolicy match,
        Mode mode,
        UpstreamPolicy upstream,
        Optional<OriginPolicy> origin,
        AuthPolicy auth,
        LimitsPolicy limits,
        MessagePolicy messages) {}
