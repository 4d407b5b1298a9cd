package io.wsguard.policy;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A whole policy file (docs/policy.md), bound and validated. Records in this package mirror the YAML one
 * to one, with the same key names; defaults live in the section binders, each written once, and are
 * named in each record's Javadoc.
 *
 * @param source the file it was read from; relative paths inside were resolved against its directory
 */
public record Policy(
        int version,
        List<ListenerPolicy> listeners,
        Optional<AdminPolicy> admin,
        ProxyPolicy proxy,
        AuditPolicy audit,
        RateLimitStorePolicy rateLimitStore,
        List<RoutePolicy> routes,
        Path source) {

    public Policy {
        listeners = List.copyOf(listeners);
        routes = List.copyOf(routes);
    }
}
