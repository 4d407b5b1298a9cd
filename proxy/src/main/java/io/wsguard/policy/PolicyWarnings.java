package io.wsguard.policy;

import java.util.ArrayList;
import java.util.List;

/**
 * What is valid in a policy but probably not meant: {@code wsguard check} prints these after the
 * policy passed, as {@code FILE:LINE:COL: warning: message}, and still exits 0.
 */
public final class PolicyWarnings {

    private PolicyWarnings() {}

    /** The warnings about {@code loaded}, each at the place to change. */
    public static List<PolicyProblem> of(LoadedPolicy loaded) {
        final Policy policy = loaded.policy();
        final List<PolicyProblem> warnings = new ArrayList<>();
        for (int i = 0; i < policy.routes().size(); i++) {
            final RoutePolicy route = policy.routes().get(i);
            // With a host, a rebinding page's Host (its own name) matches no route; with an allow
            // list, its Origin is not on it. Without either, only the port stands between it and
            // the route, and the page's server picks its port.
            if (route.match().host().isPresent() || route.origin().isPresent()) {
                continue;
            }
            final ListenerPolicy plain = firstPlainListener(policy, route.match());
            if (plain != null) {
                warnings.add(loaded.locations()
                        .at(
                                "routes[" + i + "]",
                                "no match.host and no origin.allow, served on "
                                        + "the plain ws:// listener '" + plain.name()
                                        + "': a DNS-rebinding page served on that port passes "
                                        + "the default same-origin rule (expected: "
                                        + "match.host, origin.allow, or TLS on the listener)"));
            }
        }
        policy.admin()
                .filter(admin -> !Loopback.isLoopbackName(admin.host()))
                .ifPresent(admin -> warnings.add(loaded.locations()
                        .at(
                                "admin.host",
                                admin.host() + " serves /admin/* and the dashboard to other machines, over plain"
                                        + " HTTP, with admin.token as their only guard (expected: admin.host"
                                        + " 127.0.0.1, and admin.probes for the kubelet and Prometheus, which"
                                        + " serves /healthz, /readyz and /metrics only)")));
        return warnings;
    }

    /** The first listener without TLS that serves a route matching {@code match}, or null. */
    private static ListenerPolicy firstPlainListener(Policy policy, MatchPolicy match) {
        for (ListenerPolicy listener : policy.listeners()) {
            if (listener.tls().isEmpty() && match.servedOn(listener.name())) {
                return listener;
            }
        }
        return null;
    }
}
