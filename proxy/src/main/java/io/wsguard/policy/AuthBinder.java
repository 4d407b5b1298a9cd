package io.wsguard.policy;

import io.wsguard.policy.YamlTree.Entry;
import io.wsguard.policy.YamlTree.Scalar;
import io.wsguard.policy.YamlTree.YList;
import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/** Binds {@code routes[].auth} into an {@link AuthPolicy}: {@code none}, or JWTs and client certificates. */
final class AuthBinder {

    private static final Pattern TOKEN_SOURCE = Pattern.compile("header|subprotocol|(query|cookie):[A-Za-z0-9_.-]+");
    private static final Set<String> JWT_ALGORITHMS = Set.of(
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
            "EdDSA");

    private final Values v;

    AuthBinder(Values v) {
        this.v = v;
    }

    Optional<AuthPolicy> bind(YNode node, String path) {
        if (node instanceof Scalar scalar && !scalar.isNull()) {
            return v.text(node, path, false).flatMap(text -> {
                if (text.equals("none")) {
                    return Optional.of(AuthPolicy.NONE);
                }
                v.problem(node, path, "'" + text + "' is not allowed (expected: none, or a map with jwt)");
                return Optional.empty();
            });
        }
        final Optional<Fields> fields =
                v.fields(node, path, List.of("jwt", "clientCertificate"), "none, or a map with jwt");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> clientCertificate = f.get("clientCertificate")
                .map(n -> v.choice(n, f.child("clientCertificate"), "required", "none"))
                .orElse(Optional.of("none"));
        final Optional<AuthPolicy.JwtPolicy> jwt = f.has("clientCertificate") && !f.has("jwt")
                ? Optional.empty()
                : f.required("jwt", "jwt: {issuer: …, algorithms: […], jwksUri: …}")
                        .flatMap(n -> jwt(n, f.child("jwt")));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new AuthPolicy(
                jwt, Values.enumOf(AuthPolicy.ClientCertificate.class, clientCertificate.orElseThrow())));
    }

    private Optional<AuthPolicy.JwtPolicy> jwt(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of(
                        "issuer",
                        "audience",
                        "algorithms",
                        "jwksUri",
                        "jwksFile",
                        "publicKey",
                        "secret",
                        "clockSkew",
                        "tokenSources",
                        "require",
                        "onExpiry",
                        "allowNoExpiry"),
                "a map with algorithms and one key source");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> issuer = f.get("issuer").flatMap(n -> v.text(n, f.child("issuer"), false));
        final List<String> audience = f.get("audience")
                .map(n -> n instanceof Scalar
                        ? v.text(n, f.child("audience"), false).map(List::of).orElse(List.<String>of())
                        : v.stringList(n, f.child("audience"), "a list of audiences"))
                .orElse(List.of());
        final List<String> algorithms = f.required("algorithms", "algorithms: [RS256]")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("algorithms"), "a list of JWS algorithms");
                    if (out.isEmpty() && n instanceof YList) {
                        v.problem(n, f.child("algorithms"), "is empty (expected: at least one, like RS256)");
                    }
                    for (int i = 0; i < out.size(); i++) {
                        final String alg = out.get(i);
                        if (alg.equalsIgnoreCase("none")) {
                            v.problemAt(
                                    f.child("algorithms") + "[" + i + "]",
                                    "'none' is never accepted (expected: a signing algorithm like RS256)");
                        } else if (!JWT_ALGORITHMS.contains(alg)) {
                            v.problemAt(
                                    f.child("algorithms") + "[" + i + "]",
                                    "'" + alg + "' is not a JWS algorithm (expected: one of "
                                            + String.join(
                                                    ", ",
                                                    JWT_ALGORITHMS.stream()
                                                            .sorted()
                                                            .toList()) + ")");
                        }
                    }
                    return out;
                })
                .orElse(List.of());
        final Optional<URI> jwksUri = f.get("jwksUri")
                .flatMap(n -> v.parse(n, f.child("jwksUri"), text -> {
                    final URI u = Values.uri(text, "an https:// URI");
                    if (!"https".equals(u.getScheme()) || u.getHost() == null) {
                        throw new IllegalArgumentException("'" + Redaction.uri(text)
                                + "' is not an https:// URI (expected: keys fetched over TLS)");
                    }
                    return u;
                }));
        final Optional<Path> jwksFile = f.get("jwksFile").flatMap(n -> v.file(n, f.child("jwksFile")));
        final Optional<Path> publicKey = f.get("publicKey").flatMap(n -> v.file(n, f.child("publicKey")));
        final Optional<Secret> secret = f.get("secret").flatMap(n -> v.secret(n, f.child("secret")));
        secret.filter(Secret::isEmpty)
                .ifPresent(s -> v.problemAt(f.child("secret"), "is empty (expected: a secret of at least 32 bytes)"));
        final List<String> keySources = f.keys().stream()
                .filter(List.of("jwksUri", "jwksFile", "publicKey", "secret")::contains)
                .toList(); // as written
        if (keySources.isEmpty()) {
            v.problem(f.map(), path, "no key source (expected: exactly one of jwksUri, jwksFile, publicKey, secret)");
        }
        // At the key that conflicts, not at the map: the first source alone would have been fine.
        for (String extra : keySources.subList(Math.min(1, keySources.size()), keySources.size())) {
            final Scalar key = f.map().entries().stream()
                    .map(Entry::key)
                    .filter(k -> k.text().equals(extra))
                    .findFirst()
                    .orElseThrow();
            v.problem(
                    key,
                    f.child(extra),
                    "a second key source, next to " + keySources.get(0)
                            + " (expected: exactly one of jwksUri, jwksFile, publicKey, secret)");
        }
        final Optional<Duration> clockSkew = f.get("clockSkew")
                .map(n -> v.duration(n, f.child("clockSkew"), false))
                .orElse(Optional.of(Duration.ofSeconds(30)));
        final List<String> tokenSources = f.get("tokenSources")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("tokenSources"), "a list of token sources");
                    for (int i = 0; i < out.size(); i++) {
                        if (!TOKEN_SOURCE.matcher(out.get(i)).matches()) {
                            v.problemAt(
                                    f.child("tokenSources") + "[" + i + "]",
                                    "'" + out.get(i)
                                            + "' is not a token source (expected: header, "
                                            + "subprotocol, query:NAME or cookie:NAME)");
                        }
                    }
                    if (out.isEmpty() && n instanceof YList) {
                        v.problem(n, f.child("tokenSources"), "is empty (expected: at least one, like header)");
                    }
                    return out;
                })
                .orElse(List.of("header"));
        final Map<String, String> require = new LinkedHashMap<>();
        f.get("require")
                .flatMap(n -> v.fields(n, f.child("require"), null, "a map of claim to value"))
                .ifPresent(rf -> {
                    for (String claim : rf.keys()) {
                        rf.get(claim).ifPresent(value -> {
                            if (value instanceof Scalar s && !s.type().equals("str")) {
                                v.problem(
                                        value,
                                        rf.child(claim),
                                        "'" + s.text() + "' is not a string (expected: a quoted string like \""
                                                + s.text() + "\")");
                            } else {
                                v.text(value, rf.child(claim), false).ifPresent(t -> require.put(claim, t));
                            }
                        });
                    }
                });
        final Optional<String> onExpiry = f.get("onExpiry")
                .map(n -> v.choice(n, f.child("onExpiry"), "close", "ignore"))
                .orElse(Optional.of("close"));
        final Optional<Boolean> allowNoExpiry = f.get("allowNoExpiry")
                .map(n -> v.bool(n, f.child("allowNoExpiry")))
                .orElse(Optional.of(false));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new AuthPolicy.JwtPolicy(
                issuer,
                audience,
                algorithms,
                jwksUri,
                jwksFile,
                publicKey,
                secret,
                clockSkew.orElseThrow(),
                tokenSources,
                require,
                Values.enumOf(AuthPolicy.OnExpiry.class, onExpiry.orElseThrow()),
                allowNoExpiry.orElseThrow()));
    }
}
