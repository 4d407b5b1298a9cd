package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** Binds {@code proxy} into a {@link ProxyPolicy}: process-wide limits and path matching. */
final class ProxyBinder {

    private final Values v;

    ProxyBinder(Values v) {
        this.v = v;
    }

    Optional<ProxyPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of(
                        "trustedProxies",
                        "maxConnections",
                        "clusterMaxConnections",
                        "handshakeTimeout",
                        "drainTimeout",
                        "pathMatching"),
                "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final List<String> trusted = f.get("trustedProxies")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("trustedProxies"), "a list of CIDRs");
                    for (int i = 0; i < out.size(); i++) {
                        try {
                            Cidr.check(out.get(i));
                        } catch (IllegalArgumentException e) {
                            v.problemAt(f.child("trustedProxies") + "[" + i + "]", e.getMessage());
                        }
                    }
                    return out;
                })
                .orElse(List.of());
        final Optional<Integer> maxConnections = f.get("maxConnections")
                .map(n -> v.integer(n, f.child("maxConnections"), 1, Integer.MAX_VALUE))
                .orElse(Optional.of(100_000));
        // Empty when absent, and when bad: a bad value is a problem, and then nothing is bound.
        final Optional<Integer> clusterMaxConnections = f.get("clusterMaxConnections")
                .flatMap(n -> v.integer(n, f.child("clusterMaxConnections"), 1, Integer.MAX_VALUE));
        final Optional<Duration> handshakeTimeout = f.get("handshakeTimeout")
                .map(n -> v.duration(n, f.child("handshakeTimeout"), true))
                .orElse(Optional.of(Duration.ofSeconds(10)));
        final Optional<Duration> drainTimeout = f.get("drainTimeout")
                .map(n -> v.duration(n, f.child("drainTimeout"), false))
                .orElse(Optional.of(Duration.ofSeconds(30)));
        final Optional<String> pathMatching = f.get("pathMatching")
                .map(n -> v.choice(n, f.child("pathMatching"), "normalized", "exact"))
                .orElse(Optional.of("normalized"));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new ProxyPolicy(
                trusted,
                maxConnections.orElseThrow(),
                handshakeTimeout.orElseThrow(),
                drainTimeout.orElseThrow(),
                Values.enumOf(ProxyPolicy.PathMatching.class, pathMatching.orElseThrow()),
                clusterMaxConnections));
    }
}
