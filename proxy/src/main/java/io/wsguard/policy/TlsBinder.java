package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YList;
import io.wsguard.policy.YamlTree.YNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** Binds {@code listeners[].tls} into a {@link TlsPolicy}: key material, protocols, client certificates. */
final class TlsBinder {

    private static final List<String> DEFAULT_PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");

    private final Values v;

    TlsBinder(Values v) {
        this.v = v;
    }

    Optional<TlsPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of(
                        "certificate",
                        "privateKey",
                        "certificates",
                        "keyStore",
                        "keyStorePassword",
                        "protocols",
                        "clientAuth",
                        "clientCAs"),
                "a map with certificate and privateKey, or keyStore");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final List<TlsPolicy.KeyPairPolicy> pairs = new ArrayList<>();
        final Optional<Path> certificate = f.get("certificate").flatMap(n -> v.file(n, f.child("certificate")));
        final Optional<Path> privateKey = f.get("privateKey").flatMap(n -> v.file(n, f.child("privateKey")));
        if (f.has("certificate") != f.has("privateKey")) {
            v.problem(f.map(), path, "certificate and privateKey go together (expected: both, or neither)");
        } else if (certificate.isPresent() && privateKey.isPresent()) {
            pairs.add(new TlsPolicy.KeyPairPolicy(certificate.get(), privateKey.get()));
        }
        f.get("certificates")
                .flatMap(n -> v.list(n, f.child("certificates"), "a list of {certificate, privateKey}"))
                .ifPresent(items -> {
                    for (int i = 0; i < items.items().size(); i++) {
                        final String itemPath = f.child("certificates") + "[" + i + "]";
                        v.fields(
                                        items.items().get(i),
                                        itemPath,
                                        List.of("certificate", "privateKey"),
                                        "a map with certificate and privateKey")
                                .ifPresent(pf -> {
                                    final Optional<Path> c = pf.required("certificate", "a PEM file")
                                            .flatMap(n -> v.file(n, pf.child("certificate")));
                                    final Optional<Path> k = pf.required("privateKey", "a PEM file")
                                            .flatMap(n -> v.file(n, pf.child("privateKey")));
                                    if (c.isPresent() && k.isPresent()) {
                                        pairs.add(new TlsPolicy.KeyPairPolicy(c.get(), k.get()));
                                    }
                                });
                    }
                });
        final Optional<Path> keyStore = f.get("keyStore").flatMap(n -> v.file(n, f.child("keyStore")));
        final Optional<Secret> keyStorePassword =
                f.get("keyStorePassword").flatMap(n -> v.secret(n, f.child("keyStorePassword")));
        final boolean hasPairs = f.has("certificate") || f.has("certificates");
        if (hasPairs && f.has("keyStore")) {
            v.problem(f.map(), path, "both PEM certificates and a keyStore (expected: one of them)");
        } else if (!hasPairs && !f.has("keyStore")) {
            v.problem(
                    f.map(), path, "no key material (expected: certificate and privateKey, certificates, or keyStore)");
        } else if (f.has("certificates")
                && !f.has("certificate")
                && f.get("certificates").get() instanceof YList l
                && l.items().isEmpty()) {
            v.problemAt(f.child("certificates"), "is empty (expected: at least one {certificate, privateKey})");
        }
        if (f.has("keyStore") && !f.has("keyStorePassword")) {
            v.problem(f.map(), path, "keyStore needs keyStorePassword (expected: keyStorePassword: ${KS_PASSWORD})");
        }
        if (f.has("keyStorePassword") && !f.has("keyStore")) {
            v.problemAt(f.child("keyStorePassword"), "no keyStore uses it (expected: keyStore, or remove it)");
        }
        final List<String> protocols = f.get("protocols")
                .map(n -> {
                    final List<String> out = v.stringList(n, f.child("protocols"), "a list of TLS protocols");
                    for (int i = 0; i < out.size(); i++) {
                        if (!DEFAULT_PROTOCOLS.contains(out.get(i))) {
                            v.problemAt(
                                    f.child("protocols") + "[" + i + "]",
                                    "'" + out.get(i)
                                            + "' is not allowed (expected: TLSv1.3 or "
                                            + "TLSv1.2; older ones are refused at check time)");
                        }
                    }
                    if (out.isEmpty() && n instanceof YList) {
                        v.problem(n, f.child("protocols"), "is empty (expected: TLSv1.3 and/or TLSv1.2)");
                    }
                    return out;
                })
                .orElse(DEFAULT_PROTOCOLS);
        final Optional<String> clientAuth = f.get("clientAuth")
                .map(n -> v.choice(n, f.child("clientAuth"), "none", "optional", "required"))
                .orElse(Optional.of("none"));
        final Optional<Path> clientCAs = f.get("clientCAs").flatMap(n -> v.file(n, f.child("clientCAs")));
        clientAuth.ifPresent(mode -> {
            if (!mode.equals("none") && !f.has("clientCAs")) {
                v.problemAt(
                        f.child("clientAuth"),
                        mode + " needs clientCAs (expected: clientCAs: a PEM bundle of client CAs)");
            }
            if (mode.equals("none") && f.has("clientCAs")) {
                v.problemAt(
                        f.child("clientCAs"),
                        "unused while clientAuth is none (expected: clientAuth: optional or required)");
            }
        });
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new TlsPolicy(
                pairs,
                keyStore,
                keyStorePassword,
                protocols,
                Values.enumOf(TlsPolicy.ClientAuth.class, clientAuth.orElseThrow()),
                clientCAs));
    }
}
