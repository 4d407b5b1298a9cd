package io.wsguard.policy;

import java.util.List;

/**
 * {@code routes[].origin}: the defence against cross-site WebSocket hijacking.
 *
 * @param allow exact origins or {@code https://*.example.com} wildcards
 * @param allowMissing defaults to false
 */
public record OriginPolicy(List<String> allow, boolean allowMissing) {
    public OriginPolicy {
        allow = List.copyOf(allow);
    }
}
