package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.util.List;
import java.util.Optional;

/** Binds {@code admin} into an {@link AdminPolicy}; the admin port is open to the network only with a token. */
final class AdminBinder {

    private final Values v;

    AdminBinder(Values v) {
        this.v = v;
    }

    Optional<AdminPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node, path, List.of("host", "port", "token", "probes"), "a map with host, port, token and probes");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> host =
                f.get("host").map(n -> v.host(n, f.child("host"))).orElse(Optional.of("127.0.0.1"));
        final Optional<Integer> port =
                f.get("port").map(n -> v.integer(n, f.child("port"), 0, 65535)).orElse(Optional.of(9090));
        final Optional<Secret> token =
                f.get("token").flatMap(n -> v.secret(n, f.child("token"))).filter(s -> !s.isEmpty());
        final Optional<AdminPolicy.Probes> probes = f.get("probes").flatMap(n -> probes(n, f.child("probes")));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        if (token.isEmpty() && !Loopback.isLoopbackName(host.orElseThrow())) {
            // /admin/* closes connections and reloads the policy: open to the network, anyone could.
            v.problem(
                    f.get("host").orElse(node),
                    f.child("host"),
                    host.orElseThrow()
                            + " is reachable from other machines, and admin.token is not set: "
                            + "set it (e.g. token: ${WSGUARD_ADMIN_TOKEN}) or bind to 127.0.0.1");
            return Optional.empty();
        }
        if (probes.isPresent() && port.orElseThrow() != 0 && probes.get().port() == port.orElseThrow()) {
            v.problemAt(
                    f.child("probes") + ".port",
                    "port " + port.orElseThrow() + " is also admin.port (expected: a port of its own)");
            return Optional.empty();
        }
        return Optional.of(new AdminPolicy(host.orElseThrow(), port.orElseThrow(), token, probes));
    }

    /**
     * {@code admin.probes: { host, port }}. Its host defaults to every address, unlike the admin
     * port's: it serves only what a kubelet or a scraper on another machine needs, never {@code /admin/*}.
     */
    private Optional<AdminPolicy.Probes> probes(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("host", "port"), "a map with host and port");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> host =
                f.get("host").map(n -> v.host(n, f.child("host"))).orElse(Optional.of("0.0.0.0"));
        final Optional<Integer> port =
                f.get("port").map(n -> v.integer(n, f.child("port"), 0, 65535)).orElse(Optional.of(9091));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new AdminPolicy.Probes(host.orElseThrow(), port.orElseThrow()));
    }
}
