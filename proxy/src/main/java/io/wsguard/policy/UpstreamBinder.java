package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/** Binds {@code routes[].upstream} into an {@link UpstreamPolicy}: targets, balancing, TLS and headers. */
final class UpstreamBinder {

    private static final Pattern HEADER_NAME = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");

    private final Values v;

    UpstreamBinder(Values v) {
        this.v = v;
    }

    Optional<UpstreamPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node, path, List.of("targets", "balance", "connectTimeout", "tls", "headers"), "a map with targets");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final List<URI> targets = new ArrayList<>();
        f.required("targets", "targets: [ws://host:port/path]")
                .flatMap(n -> v.list(n, f.child("targets"), "a list of ws:// or wss:// URIs"))
                .ifPresent(items -> {
                    if (items.items().isEmpty()) {
                        v.problem(items, f.child("targets"), "is empty (expected: at least one ws:// or wss:// URI)");
                    }
                    for (int i = 0; i < items.items().size(); i++) {
                        v.parse(items.items().get(i), f.child("targets") + "[" + i + "]", text -> {
                                    final URI u = Values.uri(text, "ws://host:port/path or wss://…");
                                    if (!("ws".equals(u.getScheme()) || "wss".equals(u.getScheme()))
                                            || u.getHost() == null) {
                                        throw new IllegalArgumentException("'" + Redaction.uri(text)
                                                + "' is not a WebSocket URI (expected: "
                                                + "ws://host:port/path or wss://…)");
                                    }
                                    return u;
                                })
                                .ifPresent(targets::add);
                    }
                });
        final Optional<String> balance = f.get("balance")
                .map(n -> v.choice(n, f.child("balance"), "round-robin", "least-connections"))
                .orElse(Optional.of("round-robin"));
        final Optional<Duration> connectTimeout = f.get("connectTimeout")
                .map(n -> v.duration(n, f.child("connectTimeout"), true))
                .orElse(Optional.of(Duration.ofSeconds(5)));
        final Optional<UpstreamPolicy.UpstreamTlsPolicy> tls = f.get("tls").flatMap(n -> tls(n, f.child("tls")));
        if (f.has("tls") && !targets.isEmpty() && targets.stream().noneMatch(u -> "wss".equals(u.getScheme()))) {
            v.problemAt(f.child("tls"), "no wss:// target uses it (expected: a wss:// target, or remove tls)");
        }
        final Optional<UpstreamPolicy.HeadersPolicy> headers = headers(f.section("headers"), f.child("headers"));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamPolicy(
                targets,
                Values.enumOf(UpstreamPolicy.Balance.class, balance.orElseThrow()),
                connectTimeout.orElseThrow(),
                tls,
                headers.orElseThrow()));
    }

    private Optional<UpstreamPolicy.UpstreamTlsPolicy> tls(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("trustedCAs", "verifyHostname"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<Path> trusted = f.get("trustedCAs").flatMap(n -> v.file(n, f.child("trustedCAs")));
        final Optional<Boolean> verify = f.get("verifyHostname")
                .map(n -> v.bool(n, f.child("verifyHostname")))
                .orElse(Optional.of(true));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamPolicy.UpstreamTlsPolicy(trusted, verify.orElseThrow()));
    }

    private Optional<UpstreamPolicy.HeadersPolicy> headers(YNode node, String path) {
        final Optional<Fields> fields =
                v.fields(node, path, List.of("forward", "set", "remove"), "a map with forward, set or remove");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final List<String> forward =
                f.get("forward").map(n -> headerNames(n, f.child("forward"))).orElse(List.of());
        final List<String> remove =
                f.get("remove").map(n -> headerNames(n, f.child("remove"))).orElse(List.of());
        final Map<String, String> set = new LinkedHashMap<>();
        f.get("set")
                .flatMap(n -> v.fields(n, f.child("set"), null, "a map of header to value"))
                .ifPresent(sf -> {
                    for (String header : sf.keys()) {
                        final String headerPath = sf.child(header);
                        if (!HEADER_NAME.matcher(header).matches()) {
                            v.problemAt(
                                    headerPath,
                                    "'" + header + "' is not a header name (expected: letters, digits and -)");
                        }
                        sf.get(header).flatMap(n -> v.text(n, headerPath, true)).ifPresent(value -> {
                            // CR or LF in a value would let it smuggle further headers to the upstream.
                            if (value.chars().anyMatch(c -> (c < 0x20 && c != '\t') || c == 0x7f)) {
                                v.problemAt(
                                        headerPath, "the value holds control characters (expected: one line of text)");
                            } else {
                                set.put(header, value);
                            }
                        });
                    }
                });
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamPolicy.HeadersPolicy(forward, set, remove));
    }

    private List<String> headerNames(YNode node, String path) {
        final List<String> names = v.stringList(node, path, "a list of header names");
        for (int i = 0; i < names.size(); i++) {
            if (!HEADER_NAME.matcher(names.get(i)).matches()) {
                v.problemAt(
                        path + "[" + i + "]",
                        "'" + names.get(i) + "' is not a header name (expected: letters, digits and -)");
            }
        }
        return names;
    }
}
