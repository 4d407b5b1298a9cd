package io.wsguard.policy;

import io.wsguard.policy.YamlTree.YNode;
import java.net.URI;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Binds {@code audit} into an {@link AuditPolicy}: where the log goes (a file, stdout or a syslog
 * server), its rotation, its line budget and whether it logs connections.
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
                        "connections",
                        "syslog"),
                "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<String> sink = f.get("sink")
                .map(n -> v.choice(n, f.child("sink"), "file", "stdout", "syslog"))
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
        Optional<SyslogPolicy> syslog = Optional.empty();
        if (f.has("syslog")) {
            // Bound and checked whatever the sink, as path is: switching sinks is then one key.
            syslog = bindSyslog(f.get("syslog").orElseThrow(), f.child("syslog"));
        } else if (sink.isPresent() && sink.get().equals("syslog")) {
            v.problemAt(
                    f.child("sink"),
                    "syslog needs audit.syslog with an address (expected: like"
                            + " syslog: { address: \"tcp://siem.example.com:514\" })");
        }
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
                connections.orElseThrow(),
                syslog));
    }

    private Optional<SyslogPolicy> bindSyslog(YNode node, String path) {
        final Optional<Fields> fields =
                v.fields(node, path, List.of("address", "ca", "appName", "facility", "bufferSize"), "a map");
        if (fields.isEmpty()) {
            return Optional.empty();
        }
        final Fields f = fields.get();
        final int before = v.problemCount();
        final Optional<Address> address = f.required("address", "udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT")
                .flatMap(n -> v.parse(n, f.child("address"), Address::parse));
        final Optional<Path> ca = f.get("ca").flatMap(n -> v.file(n, f.child("ca")));
        if (ca.isPresent() && address.isPresent() && address.get().transport() != SyslogPolicy.Transport.TLS) {
            v.problemAt(
                    f.child("ca"),
                    "goes with a tls:// address (the address is "
                            + address.get().transport().scheme() + "://, which has no TLS)");
        }
        final Optional<String> appName = f.get("appName")
                .map(n -> v.parse(n, f.child("appName"), AuditBinder::appName))
                .orElse(Optional.of("wsguard"));
        final Optional<SyslogPolicy.Facility> facility = f.get("facility")
                .map(n -> v.parse(n, f.child("facility"), AuditBinder::facility))
                .orElse(Optional.of(SyslogPolicy.Facility.LOCAL0));
        final Optional<Long> bufferSize = f.get("bufferSize")
                .map(n -> v.size(n, f.child("bufferSize"), 1024, 1L << 30))
                .orElse(Optional.of(SyslogPolicy.DEFAULT_BUFFER_SIZE));
        if (v.problemCount() > before) {
            return Optional.empty();
        }
        final Address a = address.orElseThrow();
        return Optional.of(new SyslogPolicy(
                a.transport(),
                a.host(),
                a.port(),
                ca,
                appName.orElseThrow(),
                facility.orElseThrow(),
                bufferSize.orElseThrow()));
    }

    /** RFC 5424 §6.2.5: APP-NAME is 1*48PRINTUSASCII (33 to 126). */
    private static String appName(String text) {
        if (text.isEmpty() || text.length() > 48 || !text.chars().allMatch(c -> c >= 33 && c <= 126)) {
            throw new IllegalArgumentException(
                    "'" + text + "' is not an APP-NAME (expected: 1 to 48 printable ASCII" + " characters, no spaces)");
        }
        return text;
    }

    private static SyslogPolicy.Facility facility(String text) {
        for (SyslogPolicy.Facility facility : SyslogPolicy.Facility.values()) {
            if (facility.yaml().equals(text)) {
                return facility;
            }
        }
        throw new IllegalArgumentException("'" + text + "' is not a facility (expected: local0 to local7, or one of"
                + " kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp)");
    }

    /** {@code audit.syslog.address}, parsed. */
    private record Address(SyslogPolicy.Transport transport, String host, int port) {

        private static final String EXPECTED =
                "udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT; the port" + " defaults to 514, 6514 for tls";

        static Address parse(String text) {
            final URI uri = Values.uri(text, EXPECTED);
            final String scheme = uri.getScheme() == null ? "" : uri.getScheme();
            final SyslogPolicy.Transport transport;
            switch (scheme) {
                case "udp" -> transport = SyslogPolicy.Transport.UDP;
                case "tcp" -> transport = SyslogPolicy.Transport.TCP;
                case "tls" -> transport = SyslogPolicy.Transport.TLS;
                default ->
                    throw new IllegalArgumentException(
                            "'" + text + "' has no udp://, tcp:// or tls:// scheme (expected: " + EXPECTED + ")");
            }
            if (uri.getHost() == null
                    || uri.getRawUserInfo() != null
                    || !(uri.getRawPath() == null || uri.getRawPath().isEmpty())
                    || uri.getRawQuery() != null
                    || uri.getRawFragment() != null) {
                throw new IllegalArgumentException(
                        "'" + text + "' is not a host and a port (expected: " + EXPECTED + ")");
            }
            final int port = uri.getPort() < 0 ? transport.defaultPort() : uri.getPort();
            if (port == 0) {
                throw new IllegalArgumentException("'" + text + "' has port 0 (expected: " + EXPECTED + ")");
            }
            String host = uri.getHost();
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            return new Address(transport, host, port);
        }
    }
}
