package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Binds {@code routes[].limits} into a {@link LimitsPolicy}: rates, connection caps and timeouts. A
 * route without the section is bound from an empty map, so that its defaults are the ones written here.
 */
final class LimitsBinder {

    private final Values v;

    LimitsBinder(Values v) {
        this.v = v;
    }

    Optional<LimitsPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of("handshakes", "connections", "messages", "bytes", "onExceed", "idleTimeout", "maxLifetime"),
                "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        Optional<LimitsPolicy.RateLimitPolicy> handshakesPerIp = Optional.empty();
        Optional<Integer> connectionsPerIp = Optional.empty();
        Optional<Integer> connectionsPerSubject = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> messagesPerConnection = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> messagesPerSubject = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> bytesPerConnection = Optional.empty();
        Optional<LimitsPolicy.RateLimitPolicy> bytesPerSubject = Optional.empty();
        final Optional<Fields> handshakes = f.get("handshakes")
                .flatMap(n -> v.fields(n, f.child("handshakes"), List.of("perIp"), "a map with perIp"));
        if (handshakes.isPresent()) {
            final Fields h = handshakes.get();
            handshakesPerIp = h.get("perIp").flatMap(n -> rateLimit(n, h.child("perIp"), false));
        }
        final Optional<Fields> connections = f.get("connections")
                .flatMap(n -> v.fields(
                        n, f.child("connections"), List.of("perIp", "perSubject"), "a map with perIp or perSubject"));
        if (connections.isPresent()) {
            final Fields c = connections.get();
            connectionsPerIp = c.get("perIp").flatMap(n -> v.integer(n, c.child("perIp"), 1, Integer.MAX_VALUE));
            connectionsPerSubject =
                    c.get("perSubject").flatMap(n -> v.integer(n, c.child("perSubject"), 1, Integer.MAX_VALUE));
        }
        final Optional<Fields> messages = f.get("messages")
                .flatMap(n -> v.fields(
                        n,
                        f.child("messages"),
                        List.of("perConnection", "perSubject"),
                        "a map with perConnection or perSubject"));
        if (messages.isPresent()) {
            final Fields m = messages.get();
            messagesPerConnection = m.get("perConnection").flatMap(n -> rateLimit(n, m.child("perConnection"), false));
            messagesPerSubject = m.get("perSubject").flatMap(n -> rateLimit(n, m.child("perSubject"), false));
        }
        final Optional<Fields> bytes = f.get("bytes")
                .flatMap(n -> v.fields(
                        n,
                        f.child("bytes"),
                        List.of("perConnection", "perSubject"),
                        "a map with perConnection or perSubject"));
        if (bytes.isPresent()) {
            final Fields b = bytes.get();
            bytesPerConnection = b.get("perConnection").flatMap(n -> rateLimit(n, b.child("perConnection"), true));
            bytesPerSubject = b.get("perSubject").flatMap(n -> rateLimit(n, b.child("perSubject"), true));
        }
        final Optional<String> onExceed = f.get("onExceed")
                .map(n -> v.choice(n, f.child("onExceed"), "close", "drop"))
                .orElse(Optional.of("close"));
        final Optional<Duration> idle = f.get("idleTimeout")
                .map(n -> v.duration(n, f.child("idleTimeout"), true))
                .orElse(Optional.of(Duration.ofMinutes(10)));
        final Optional<Duration> lifetime = f.get("maxLifetime")
                .map(n -> v.duration(n, f.child("maxLifetime"), true))
                .orElse(Optional.of(Duration.ofHours(24)));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new LimitsPolicy(
                handshakesPerIp,
                connectionsPerIp,
                connectionsPerSubject,
                messagesPerConnection,
                messagesPerSubject,
                bytesPerConnection,
                bytesPerSubject,
                Values.enumOf(Action.class, onExceed.orElseThrow()),
                idle.orElseThrow(),
                lifetime.orElseThrow()));
    }

    private Optional<LimitsPolicy.RateLimitPolicy> rateLimit(YNode node, String path, boolean ofBytes) {
        final Optional<Fields> fields =
                v.fields(node, path, List.of("rate", "burst"), "a map with rate, like {rate: 10/s, burst: 20}");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<Rate> rate = f.required("rate", "rate: like 10/s")
                .flatMap(n -> v.parse(n, f.child("rate"), text -> {
                    final Rate r = Rate.parse(text);
                    if (!ofBytes && text.contains("iB")) {
                        throw new IllegalArgumentException(
                                "'" + text + "' is a byte rate (expected: a count like 50/s)");
                    }
                    // Bucket4j refills at most one token per nanosecond; a faster rate would fail every connection.
                    if ((double) r.amount() / r.per().toNanos() > 1.0) {
                        throw new IllegalArgumentException(
                                "'" + text + "' is faster than wsguard can meter (expected: at most "
                                        + (ofBytes ? "953MiB/s" : "1000000000/s") + ")");
                    }
                    return r;
                }));
        final Optional<Long> burst = f.get("burst")
                .flatMap(n -> ofBytes
                        ? v.size(n, f.child("burst"), 1, Long.MAX_VALUE)
                        : v.integer(n, f.child("burst"), 1, Integer.MAX_VALUE).map(Integer::longValue));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new LimitsPolicy.RateLimitPolicy(
                rate.orElseThrow(), burst.orElse(rate.orElseThrow().amount())));
    }
}
