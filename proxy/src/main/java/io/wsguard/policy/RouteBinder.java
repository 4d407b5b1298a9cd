package io.wsguard.policy;

import io.wsguard.check.Mode;
import io.wsguard.policy.YamlTree.YList;
import io.wsguard.policy.YamlTree.YNode;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Function;

/**
 * Binds {@code routes[]} into {@link RoutePolicy}s: the route's own keys, {@code match} and
 * {@code origin}, with the other sections bound by their own binders; then the checks across a
 * route's sections, reported at the field that owns them.
 */
final class RouteBinder {

    private final Values v;
    private final UpstreamBinder upstreamBinder;
    private final AuthBinder authBinder;
    private final LimitsBinder limitsBinder;
    private final MessagesBinder messagesBinder;

    RouteBinder(Values v) {
        this.v = v;
        this.upstreamBinder = new UpstreamBinder(v);
        this.authBinder = new AuthBinder(v);
        this.limitsBinder = new LimitsBinder(v);
        this.messagesBinder = new MessagesBinder(v);
    }

    Optional<RoutePolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of("name", "match", "mode", "upstream", "origin", "auth", "limits", "messages"),
                "a map with name, match, upstream and auth");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> name = f.required("name", "a route name like chat")
                .flatMap(n -> v.parse(n, f.child("name"), text -> {
                    if (!Values.NAME.matcher(text).matches()) {
                        throw new IllegalArgumentException(
                                "'" + text + "' is not a route name (expected: letters, digits, '_', '.', '-')");
                    }
                    return text;
                }));
        final Optional<MatchPolicy> match = f.required("match", "match: {path: /chat} or {pathPrefix: /chat/}")
                .flatMap(n -> match(n, f.child("match")));
        final Optional<String> mode = f.get("mode")
                .map(n -> v.choice(n, f.child("mode"), "enforce", "monitor"))
                .orElse(Optional.of("enforce"));
        final Optional<UpstreamPolicy> upstream = f.required("upstream", "upstream: {targets: [ws://host:port/path]}")
                .flatMap(n -> upstreamBinder.bind(n, f.child("upstream")));
        final Optional<OriginPolicy> origin = f.get("origin").flatMap(n -> origin(n, f.child("origin")));
        final Optional<AuthPolicy> auth =
                f.required("auth", "auth: none, or auth: {jwt: …}").flatMap(n -> authBinder.bind(n, f.child("auth")));
        final Optional<LimitsPolicy> limits = limitsBinder.bind(f.section("limits"), f.child("limits"));
        final Optional<MessagePolicy> messages = messagesBinder.bind(f.section("messages"), f.child("messages"));
        // ${jwt.CLAIM} expands verified claims: without auth.jwt there are none to expand.
        if (upstream.isPresent() && auth.isPresent() && auth.get().jwt().isEmpty()) {
            upstream.get().headers().set().forEach((header, value) -> {
                if (value.contains("${jwt.")) {
                    v.problemAt(
                            f.child("upstream") + ".headers.set." + header,
                            "uses ${jwt.…} but the route has no auth.jwt "
                                    + "(expected: auth: {jwt: …}, or a static value)");
                }
            });
        }
        // Only verified tokens carry a subject: without auth.jwt a per-subject limit would limit nobody.
        if (auth.isPresent() && auth.get().jwt().isEmpty() && limits.isPresent()) {
            if (limits.get().messagesPerSubject().isPresent()) {
                v.problemAt(
                        f.child("limits") + ".messages.perSubject",
                        "limits messages per token subject but the route has no "
                                + "auth.jwt (expected: auth: {jwt: …}, or perConnection)");
            }
            if (limits.get().bytesPerSubject().isPresent()) {
                v.problemAt(
                        f.child("limits") + ".bytes.perSubject",
                        "limits bytes per token subject but the route has no auth.jwt"
                                + " (expected: auth: {jwt: …}, or perConnection)");
            }
            if (limits.get().connectionsPerSubject().isPresent()) {
                v.problemAt(
                        f.child("limits") + ".connections.perSubject",
                        "limits connections per token subject but the route "
                                + "has no auth.jwt (expected: auth: {jwt: …}, or perIp)");
            }
        }
        // A message larger than the byte bucket could never pass: every one of them would be refused.
        if (limits.isPresent() && messages.isPresent()) {
            tooSmallForMaxSize(
                    limits.get().bytesPerConnection(), messages.get(), f.child("limits") + ".bytes.perConnection");
            tooSmallForMaxSize(limits.get().bytesPerSubject(), messages.get(), f.child("limits") + ".bytes.perSubject");
        }
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new RoutePolicy(
                name.orElseThrow(),
                match.orElseThrow(),
                Values.enumOf(Mode.class, mode.orElseThrow()),
                upstream.orElseThrow(),
                origin,
                auth.orElseThrow(),
                limits.orElseThrow(),
                messages.orElseThrow()));
    }

    private Optional<MatchPolicy> match(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node, path, List.of("host", "path", "pathPrefix", "listeners"), "a map with path or pathPrefix");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> host = f.get("host")
                .flatMap(n -> v.parse(n, f.child("host"), text -> {
                    final String name = text.startsWith("*.") ? text.substring(2) : text;
                    if (!Values.HOST_LABELS.matcher(name).matches()) {
                        throw new IllegalArgumentException(
                                "'" + text + "' is not a host (expected: chat.example.com or *.example.com)");
                    }
                    return text.toLowerCase(Locale.ROOT);
                }));
        final Function<String, String> absolute = text -> {
            if (!text.startsWith("/")) {
                throw new IllegalArgumentException("'" + text + "' does not start with / (expected: like /chat)");
            }
            return text;
        };
        final Optional<String> exact = f.get("path").flatMap(n -> v.parse(n, f.child("path"), absolute));
        final Optional<String> prefix = f.get("pathPrefix").flatMap(n -> v.parse(n, f.child("pathPrefix"), absolute));
        if (f.has("path") == f.has("pathPrefix")) {
            v.problem(
                    f.map(),
                    path,
                    (f.has("path") ? "both path and pathPrefix" : "neither path nor pathPrefix")
                            + " (expected: exactly one of them)");
        }
        final List<String> listeners = f.get("listeners")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("listeners"), "a list of listener names");
                    if (out.isEmpty() && n instanceof YList) {
                        v.problem(
                                n,
                                f.child("listeners"),
                                "is empty (expected: at least one listener name; leave it out for every listener)");
                    }
                    return out;
                })
                .orElse(List.of());
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new MatchPolicy(host, exact, prefix, listeners));
    }

    private Optional<OriginPolicy> origin(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("allow", "allowMissing"), "a map with allow");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final List<String> allow = f.get("allow")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("allow"), "a list of origins");
                    for (int i = 0; i < out.size(); i++) {
                        try {
                            OriginPattern.parse(out.get(i));
                        } catch (IllegalArgumentException e) {
                            v.problemAt(f.child("allow") + "[" + i + "]", e.getMessage());
                        }
                    }
                    return out;
                })
                .orElse(List.of());
        final Optional<Boolean> allowMissing = f.get("allowMissing")
                .map(n -> v.bool(n, f.child("allowMissing")))
                .orElse(Optional.of(false));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new OriginPolicy(allow, allowMissing.orElseThrow()));
    }

    private void tooSmallForMaxSize(Optional<LimitsPolicy.RateLimitPolicy> rate, MessagePolicy messages, String path) {
        if (rate.isPresent() && rate.get().burst() < messages.maxSize()) {
            v.problemAt(
                    path,
                    "burst of " + rate.get().burst()
                            + " bytes is smaller than messages.maxSize ("
                            + messages.maxSize() + " bytes), so larger messages could never pass"
                            + " (expected: burst >= maxSize)");
        }
    }
}
