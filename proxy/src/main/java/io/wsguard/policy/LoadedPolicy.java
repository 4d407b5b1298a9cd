package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

/**
 * A bound and validated policy, and where each of its values was written, so that later stages
 * (TLS and schema compilation) can report their own failures at a line and column.
 */
public record LoadedPolicy(Policy policy, PolicyLocations locations) {
    public LoadedPolicy {
        requireNonNull(policy, "policy");
        requireNonNull(locations, "locations");
    }
}
