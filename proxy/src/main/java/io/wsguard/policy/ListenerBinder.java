package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** Binds {@code listeners[]} into {@link ListenerPolicy}s, and checks them against each other. */
final class ListenerBinder {

    private final Values v;
    private final TlsBinder tls;

    ListenerBinder(Values v) {
        this.v = v;
        this.tls = new TlsBinder(v);
    }

    Optional<ListenerPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(node, path, List.of("port", "host", "tls", "name"), "a map with port");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<Integer> port =
                f.required("port", "a port 0..65535").flatMap(n -> v.integer(n, f.child("port"), 0, 65535));
        final Optional<String> host =
                f.get("host").map(n -> v.host(n, f.child("host"))).orElse(Optional.of("0.0.0.0"));
        final Optional<TlsPolicy> tlsPolicy = f.get("tls").flatMap(n -> tls.bind(n, f.child("tls")));
        final Optional<String> name = f.get("name")
                .flatMap(n -> v.parse(n, f.child("name"), text -> {
                    if (!Values.NAME.matcher(text).matches()) {
                        throw new IllegalArgumentException(
                                "'" + text + "' is not a listener name (expected: letters, digits, '_', '.', '-')");
                    }
                    return text;
                }));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        // The default names the listener by what tells listeners apart on one host: scheme and port.
        final String listenerName = name.orElse((f.has("tls") ? "wss-" : "ws-") + port.orElseThrow());
        return Optional.of(new ListenerPolicy(listenerName, host.orElseThrow(), port.orElseThrow(), tlsPolicy));
    }

    /** Checks the bound listeners together: one per address, one per name. */
    void checkTogether(List<ListenerPolicy> listeners) {
        checkAddresses(listeners);
        checkNames(listeners);
    }

    private void checkAddresses(List<ListenerPolicy> listeners) {
        final Set<String> seen = new HashSet<>();
        for (int i = 0; i < listeners.size(); i++) {
            final ListenerPolicy l = listeners.get(i);
            // Port 0 is ephemeral: several listeners may ask for one each.
            if (l.port() != 0 && !seen.add(l.host() + ":" + l.port())) {
                v.problemAt(
                        "listeners[" + i + "].port",
                        l.host() + ":" + l.port()
                                + " is used by another listener (expected: one listener per host and port)");
            }
        }
    }

    private void checkNames(List<ListenerPolicy> listeners) {
        final Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < listeners.size(); i++) {
            final String name = listeners.get(i).name();
            final Integer first = seen.putIfAbsent(name, i);
            if (first == null) {
                continue;
            }
            final String path = "listeners[" + i + "]";
            final ListenerPolicy other = listeners.get(first);
            if (listeners.get(i).port() != 0
                    && other.port() == listeners.get(i).port()
                    && other.host().equals(listeners.get(i).host())) {
                continue; // one address twice: already reported at its port
            }
            if (v.written(path + ".name")) {
                v.problemAt(
                        path + ".name",
                        "'" + name + "' is already the name of listeners[" + first + "] (expected: unique names)");
            } else {
                v.problemAt(
                        path,
                        "its default name '" + name + "' is already the name of listeners[" + first
                                + "] (expected: name: … on one of them, so that routes can tell them apart)");
            }
        }
    }
}
