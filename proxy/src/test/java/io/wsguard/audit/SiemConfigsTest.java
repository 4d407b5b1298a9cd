package io.wsguard.audit;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.TestCerts;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;

/**
 * The shipping configurations in {@code deploy/siem/} that README's "Ship to your SIEM" points to:
 * Fluent Bit's and Vector's YAML parse and read the audit file as the README says (the path, a JSON
 * parse, checkpoints, rotation), and rsyslog's passes {@code rsyslogd -N1} once its certificate
 * paths point at real files.
 */
class SiemConfigsTest {

    private static final Path SIEM = Path.of("../deploy/siem");

    @TempDir
    Path dir;

    @SuppressWarnings("unchecked") // YAML maps and lists, as the files write them
    private static Map<String, Object> yaml(String name) throws Exception {
        final Object doc = new Load(LoadSettings.builder().build())
                .loadFromString(Files.readString(SIEM.resolve(name), StandardCharsets.UTF_8));
        assertThat(doc).as(name).isInstanceOf(Map.class);
        return (Map<String, Object>) doc;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object value) {
        assertThat(value).isInstanceOf(Map.class);
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object value) {
        assertThat(value).isInstanceOf(List.class);
        return (List<Object>) value;
    }

    @Test
    void fluentBitTailsTheAuditFileWithAJsonParserACheckpointAndRotation() throws Exception {
        final Map<String, Object> config = yaml("fluent-bit.yaml");

        final Map<String, Object> parser = map(list(config.get("parsers")).get(0));
        assertThat(parser)
                .containsEntry("name", "wsguard_audit")
                .containsEntry("format", "json")
                .containsEntry("time_key", "ts");
        final Map<String, Object> tail =
                map(list(map(config.get("pipeline")).get("inputs")).get(0));
        assertThat(tail)
                .containsEntry("name", "tail")
                .containsEntry("path", "/var/log/wsguard/audit.jsonl")
                .containsEntry("parser", "wsguard_audit")
                .containsEntry("db", "/var/lib/fluent-bit/wsguard-audit.db")
                .containsKey("rotate_wait");
        final Map<String, Object> output =
                map(list(map(config.get("pipeline")).get("outputs")).get(0));
        assertThat(output).containsEntry("match", tail.get("tag"));
    }

    @Test
    void vectorReadsTheAuditFilesParsesEachLineAndKeepsCheckpoints() throws Exception {
        final Map<String, Object> config = yaml("vector.yaml");

        assertThat(config).containsEntry("data_dir", "/var/lib/vector");
        final Map<String, Object> source = map(map(config.get("sources")).get("wsguard_audit"));
        assertThat(source).containsEntry("type", "file");
        assertThat(list(source.get("include"))).containsExactly("/var/log/wsguard/audit.jsonl*");
        assertThat(map(source.get("fingerprint"))).containsEntry("strategy", "checksum");
        final Map<String, Object> remap = map(map(config.get("transforms")).get("wsguard_audit_parsed"));
        assertThat(remap).containsEntry("type", "remap");
        assertThat(list(remap.get("inputs"))).containsExactly("wsguard_audit");
        assertThat((String) remap.get("source")).contains("parse_json!(string!(.message))");
        final Map<String, Object> sink = map(map(config.get("sinks")).get("siem"));
        assertThat(list(sink.get("inputs"))).containsExactly("wsguard_audit_parsed");
    }

    @Test
    void rsyslogsReceiverPassesItsOwnConfigCheck() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "ca");
        final TestCerts.Issued server =
                ca.issue(dir, "server", List.of("localhost"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final String conf = Files.readString(SIEM.resolve("rsyslog.conf"), StandardCharsets.UTF_8)
                .replace("/etc/rsyslog.d/tls/ca.pem", ca.certificatePath().toString())
                .replace("/etc/rsyslog.d/tls/server.pem", server.certificate().toString())
                .replace("/etc/rsyslog.d/tls/server.key", server.privateKey().toString())
                .replace("/var/log/wsguard/", dir + "/");
        final Path file = Files.writeString(dir.resolve("rsyslog.conf"), conf, StandardCharsets.UTF_8);
        final String binary = Files.isExecutable(Path.of("/usr/sbin/rsyslogd")) ? "/usr/sbin/rsyslogd" : "rsyslogd";
        final Process check = new ProcessBuilder(binary, "-N1", "-f", file.toString())
                .redirectErrorStream(true)
                .start();
        final String output = new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(check.waitFor(30, TimeUnit.SECONDS)).isTrue();

        assertThat(check.exitValue()).as(output).isZero();
        assertThat(output).contains("End of config validation run").doesNotContain("error");
    }
}
