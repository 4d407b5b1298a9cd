package io.wsguard.policy;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.server.PolicyCheck;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code audit.sink: syslog} and {@code audit.syslog}: what binds, with which defaults, and that every
 * wrong value is refused at its file:line:column; {@code check} reads the CA bundle.
 */
class SyslogPolicyTest {

    @TempDir
    Path dir;

    @Test
    void anAddressAloneTakesTheDefaults() throws Exception {
        final Policy policy = PolicyLoader.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL
                                        + "audit: { sink: syslog, syslog: { address: \"tcp://siem.example\" } }\n"),
                        Map.of())
                .policy();

        assertThat(policy.audit().sink()).isEqualTo(AuditPolicy.Sink.SYSLOG);
        assertThat(policy.audit().syslog())
                .contains(new SyslogPolicy(
                        SyslogPolicy.Transport.TCP,
                        "siem.example",
                        514,
                        Optional.empty(),
                        "wsguard",
                        SyslogPolicy.Facility.LOCAL0,
                        8L << 20));
    }

    @Test
    void everyKeyIsRead() throws Exception {
        final Path ca = Files.writeString(dir.resolve("ca.pem"), "written, read by check\n");
        final Policy policy = PolicyLoader.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL + "audit:\n  sink: syslog\n  syslog:\n    address: tls://[::1]\n"
                                        + "    ca: ca.pem\n    appName: edge-proxy\n    facility: auth\n"
                                        + "    bufferSize: 64KiB\n"),
                        Map.of())
                .policy();

        assertThat(policy.audit().syslog())
                .contains(new SyslogPolicy(
                        SyslogPolicy.Transport.TLS,
                        "::1",
                        6514,
                        Optional.of(ca),
                        "edge-proxy",
                        SyslogPolicy.Facility.AUTH,
                        64 << 10));
        assertThat(policy.audit().syslog().orElseThrow().transport().defaultPort())
                .isEqualTo(6514);
    }

    @Test
    void withAnotherSinkTheSectionIsCheckedButNotUsed() throws Exception {
        final Policy policy = PolicyLoader.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL
                                        + "audit: { sink: file, syslog: { address: \"tcp://siem.example\" } }\n"),
                        Map.of())
                .policy();

        assertThat(policy.audit().sink()).isEqualTo(AuditPolicy.Sink.FILE);
        assertThat(policy.audit().syslog()).isPresent();
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL + "audit: { sink: stdout, syslog: { address: \"ftp://siem\" } }\n",
                        Map.of()))
                .contains("audit.syslog.address: 'ftp://siem' has no udp://, tcp:// or tls:// scheme");
    }

    @Test
    void theUdpPortDefaultsTo514() throws Exception {
        final Policy policy = PolicyLoader.load(
                        PolicyFiles.write(
                                dir,
                                PolicyFiles.MINIMAL
                                        + "audit: { sink: syslog, syslog: { address: \"udp://10.0.0.9\" } }\n"),
                        Map.of())
                .policy();

        assertThat(policy.audit().syslog().orElseThrow().port()).isEqualTo(514);
    }

    static Stream<Arguments> broken() {
        return Stream.of(
                Arguments.of(
                        "audit: { sink: syslog }\n",
                        "9:16: audit.sink: syslog needs audit.syslog with an address (expected: like syslog: {"
                                + " address: \"tcp://siem.example.com:514\" })"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { appName: x } }\n",
                        "9:32: audit.syslog: missing required key 'address' (expected: udp://HOST:PORT,"
                                + " tcp://HOST:PORT or tls://HOST:PORT)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"http://siem:514\" } }\n",
                        "9:43: audit.syslog.address: 'http://siem:514' has no udp://, tcp:// or tls:// scheme"
                                + " (expected: udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT; the port defaults"
                                + " to 514, 6514 for tls)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem:514/path\" } }\n",
                        "9:43: audit.syslog.address: 'tcp://siem:514/path' is not a host and a port (expected:"
                                + " udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT; the port defaults to 514,"
                                + " 6514 for tls)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem:0\" } }\n",
                        "9:43: audit.syslog.address: 'tcp://siem:0' has port 0 (expected: udp://HOST:PORT,"
                                + " tcp://HOST:PORT or tls://HOST:PORT; the port defaults to 514, 6514 for tls)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem\", facility: local9 } }\n",
                        "9:67: audit.syslog.facility: 'local9' is not a facility (expected: local0 to local7, or"
                                + " one of kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv,"
                                + " ftp)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem\", appName: \"my app\" } }\n",
                        "9:66: audit.syslog.appName: 'my app' is not an APP-NAME (expected: 1 to 48 printable"
                                + " ASCII characters, no spaces)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem\", bufferSize: 10 } }\n",
                        "9:69: audit.syslog.bufferSize: '10' is out of range (expected: 1KiB..1GiB)"),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem\", ca: missing.pem } }\n",
                        "9:61: audit.syslog.ca: file not found: "),
                Arguments.of(
                        "audit: { sink: syslog, syslog: { address: \"tcp://siem\", color: red } }\n",
                        "9:57: audit.syslog.color: unknown key (expected: one of address, ca, appName, facility,"
                                + " bufferSize)"));
    }

    @ParameterizedTest
    @MethodSource("broken")
    void aWrongValueIsRefusedAtItsPlace(String audit, String expected) {
        assertThat(PolicyFiles.problems(dir, PolicyFiles.MINIMAL + audit, Map.of()))
                .startsWith(dir.resolve("policy.yaml") + ":" + expected);
    }

    @Test
    void aCaWithATcpAddressIsRefused() throws Exception {
        Files.writeString(dir.resolve("ca.pem"), "x");
        assertThat(PolicyFiles.problems(
                        dir,
                        PolicyFiles.MINIMAL
                                + "audit: { sink: syslog, syslog: { address: \"tcp://siem\", ca: ca.pem } }\n",
                        Map.of()))
                .isEqualTo(dir.resolve("policy.yaml") + ":9:61: audit.syslog.ca: goes with a tls:// address (the"
                        + " address is tcp://, which has no TLS)");
    }

    @Test
    void checkReadsTheCaBundle() throws Exception {
        Files.writeString(dir.resolve("ca.pem"), "not a certificate\n");
        final LoadedPolicy loaded = PolicyLoader.load(
                PolicyFiles.write(
                        dir,
                        PolicyFiles.MINIMAL
                                + "audit: { sink: syslog, syslog: { address: \"tls://siem\", ca: ca.pem } }\n"),
                Map.of());

        try {
            PolicyCheck.compile(loaded);
            throw new AssertionError("check accepted a CA file without a certificate");
        } catch (PolicyException e) {
            assertThat(e.problems())
                    .singleElement()
                    .hasToString(dir.resolve("policy.yaml")
                            + ":9:61: audit.syslog.ca: '" + dir.resolve("ca.pem")
                            + "' holds no certificate (expected: PEM with -----BEGIN CERTIFICATE-----)");
        }
    }
}
