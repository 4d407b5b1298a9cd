package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Binds {@code audit} into an {@link AuditPolicy}: where the log goes, its rotation, its line budget and
 * whether it logs connections.
 */
final class AuditBinder {

    private final Values v;

    AuditBinder(Values v) {
        this.v = v;
    }

    Optional<AuditPolicy> bind(YNode node, String path) {
        final Optional<Fields> fields = v.fields(
                node,
                path,
                List.of(
                        "sink",
                        "path",
                        "maxFileSize",
                        "maxFiles",
                        "sampleBytes",
                        "integrityKey",
                        "linesPerClient",
                        "connections"),
                "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> sink = f.get("sink")
                .map(n -> v.choice(n, f.child("sink"), "file", "stdout"))
                .orElse(Optional.of("file"));
        // The log need not exist yet (the sink creates it): resolved, not checked.
        final Optional<Path> logPath = f.get("path")
                .map(n -> v.parse(n, f.child("path"), v::resolve))
                .orElse(Optional.of(v.resolve("logs/audit.jsonl")));
        final Optional<Long> maxFileSize = f.get("maxFileSize")
                .map(n -> v.size(n, f.child("maxFileSize"), 1, Long.MAX_VALUE))
                .orElse(Optional.of(100L << 20));
        final Optional<Integer> maxFiles = f.get("maxFiles")
                .map(n -> v.integer(n, f.child("maxFiles"), 1, 10_000))
                .orElse(Optional.of(10));
        final Optional<Long> sampleBytes = f.get("sampleBytes")
                .map(n -> v.size(n, f.child("sampleBytes"), 0, 64 * 1024))
                .orElse(Optional.of(0L));
        final Optional<Secret> integrityKey = f.get("integrityKey")
                .flatMap(n -> v.secret(n, f.child("integrityKey")))
                .filter(s -> !s.isEmpty());
        final Optional<Rate> linesPerClient = f.get("linesPerClient")
                .map(n -> v.parse(n, f.child("linesPerClient"), text -> {
                    if (text.contains("iB")) {
                        throw new IllegalArgumentException(
                                "'" + text + "' is a byte rate (expected: a count of lines like 60/min)");
                    }
                    return Rate.parse(text);
                }))
                .orElse(Optional.of(AuditPolicy.DEFAULT_LINES_PER_CLIENT));
        final Optional<Boolean> connections =
                f.get("connections").map(n -> v.bool(n, f.child("connections"))).orElse(Optional.of(false));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        return Optional.of(new AuditPolicy(
                Values.enumOf(AuditPolicy.Sink.class, sink.orElseThrow()),
                logPath.orElseThrow(),
                maxFileSize.orElseThrow(),
                maxFiles.orElseThrow(),
                sampleBytes.orElseThrow().intValue(),
                integrityKey,
                linesPerClient.orElseThrow(),
                connections.orElseThrow()));
    }
}
