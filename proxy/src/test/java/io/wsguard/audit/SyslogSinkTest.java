package io.wsguard.audit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawRequest;
import io.wsguard.testing.Rsyslog;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.UpstreamServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code audit.sink: syslog} against a real rsyslogd started on loopback: a handshake refused by a
 * running proxy reaches rsyslog over UDP, TCP and TLS as an RFC 5424 message with the right PRI,
 * APP-NAME, PROCID, MSGID and structured data, and a MSG that is the exact audit line (its integrity
 * mac verifies). While rsyslog is down lines wait in the buffer and arrive once it is back; past the
 * buffer they are dropped, counted in {@code /metrics}, and reported in an {@code audit_dropped} line
 * whose sequence numbers are exactly the chain's gap.
 */
@Timeout(120)
class SyslogSinkTest {

    private static final String KEY = "syslog-test-integrity-key";
    private static final Map<String, String> ENV = Map.of("AUDIT_KEY", KEY);
    /** PRI, VERSION 1, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, one SD element, MSG. */
    private static final Pattern RFC5424 =
            Pattern.compile("<(\\d{1,3})>1 (\\S+) (\\S+) (\\S+) (\\S+) (\\S+) (\\[(?:[^\\]\\\\]|\\\\.)*\\]) (.*)");

    private static final JsonMapper JSON = JsonMapper.builder().build();

    @TempDir
    Path dir;

    @RegisterExtension
    final CloseAfterEach closeAfter = new CloseAfterEach();

    static UpstreamServer upstream;

    @BeforeAll
    static void startUpstream() throws Exception {
        upstream = new UpstreamServer();
    }

    @AfterAll
    static void stopUpstream() throws Exception {
        upstream.close();
    }

    /** One received message, split into RFC 5424's fields. */
    record Received(
            int pri, String timestamp, String host, String app, String procId, String msgId, String sd, String msg) {

        static Received parse(String raw) {
            final Matcher m = RFC5424.matcher(raw);
            assertThat(m.matches()).as("an RFC 5424 message: %s", raw).isTrue();
            return new Received(
                    Integer.parseInt(m.group(1)),
                    m.group(2),
                    m.group(3),
                    m.group(4),
                    m.group(5),
                    m.group(6),
                    m.group(7),
                    m.group(8));
        }

        JsonNode json() {
            return JSON.readTree(msg);
        }

        String field(String name) {
            final JsonNode value = json().get(name);
            return value == null || value.isNull() ? null : value.asString();
        }
    }

    private RunningProxy proxy(String syslog) throws Exception {
        final RunningProxy proxy = RunningProxy.start(
                PolicyText.in(dir)
                        .audit("{ sink: syslog, integrityKey: \"${AUDIT_KEY}\", syslog: " + syslog + " }")
                        .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n")
                        .routes("""
                                - name: chat
                                  match: { path: /chat }
                                  upstream: { targets: [%s] }
                                  origin: { allow: ["https://chat.example.com"] }
                                  auth: none
                                """.formatted(upstream.uri("/echo"))),
                ENV);
        closeAfter.add(proxy);
        return proxy;
    }

    /** An upgrade from a foreign origin, as {@code client}: refused with 403 before the upstream. */
    private static void refuse(RunningProxy proxy, String client) throws Exception {
        final int before = upstream.upgrades();
        final List<String> lines = RawRequest.upgradeHeaders();
        lines.add("Host: 127.0.0.1:" + proxy.port());
        lines.add("Origin: https://evil.example");
        lines.add("X-Forwarded-For: " + client);
        lines.add("Sec-WebSocket-Key: " + RawRequest.KEY);
        final RawRequest refused = RawRequest.get(proxy.port(), "/chat", lines);
        assertThat(refused.status()).isEqualTo(403);
        assertThat(upstream.upgrades()).isEqualTo(before);
    }

    private static List<Received> awaitMessages(Rsyslog rsyslog, int atLeast) throws Exception {
        await().atMost(Duration.ofSeconds(20))
                .pollInterval(Duration.ofMillis(50))
                .until(() -> rsyslog.messages().size() >= atLeast);
        final List<Received> received = new ArrayList<>();
        for (String raw : rsyslog.messages()) {
            received.add(Received.parse(raw));
        }
        return received;
    }

    private static void assertRefusal(Received message, int pri, String app, String client) {
        assertThat(message.pri()).isEqualTo(pri);
        assertThat(message.host()).isEqualTo(SyslogFormat.localHostName());
        assertThat(message.app()).isEqualTo(app);
        assertThat(message.procId())
                .isEqualTo(Long.toString(ProcessHandle.current().pid()));
        assertThat(message.msgId()).isEqualTo("blocked");
        final JsonNode line = message.json();
        assertThat(message.timestamp()).isEqualTo(line.get("ts").asString());
        assertThat(message.sd())
                .isEqualTo("[wsguard@32473 reason=\"origin_denied\" route=\"chat\" seq=\""
                        + line.get("seq").asLong() + "\"]");
        assertThat(line.get("event").asString()).isEqualTo("blocked");
        assertThat(line.get("reason").asString()).isEqualTo("origin_denied");
        assertThat(line.get("route").asString()).isEqualTo("chat");
        assertThat(line.get("client").asString()).isEqualTo(client);
        assertThat(line.get("origin").asString()).isEqualTo("https://evil.example");
        assertThat(line.get("action").asString()).isEqualTo("refuse");
        assertThat(line.get("status").asInt()).isEqualTo(403);
    }

    /** The messages' MSGs verify as one chain from its start: each is the audit line, byte for byte. */
    private static void assertExactLines(List<Received> messages) {
        final MacChain.Result chain =
                MacChain.verify(messages.stream().map(Received::msg).toList(), KEY.getBytes(StandardCharsets.UTF_8));
        assertThat(chain.ok()).as("%s", chain).isTrue();
    }

    @Test
    void aRefusalReachesRsyslogOverUdpAsAnRfc5424Message() throws Exception {
        final Rsyslog rsyslog = closeAfter.add(Rsyslog.in(dir).start());
        final RunningProxy proxy = proxy("{ address: \"udp://127.0.0.1:" + rsyslog.udpPort() + "\" }");

        refuse(proxy, "198.18.7.1");

        final List<Received> received = awaitMessages(rsyslog, 1);
        // local0 (16) × 8 + warning (4)
        assertRefusal(received.get(0), 132, "wsguard", "198.18.7.1");
        assertExactLines(received);
    }

    @Test
    void aRefusalReachesRsyslogOverTcpWithOctetCounting() throws Exception {
        final Rsyslog rsyslog = closeAfter.add(Rsyslog.in(dir).start());
        final RunningProxy proxy =
                proxy("{ address: \"tcp://127.0.0.1:" + rsyslog.tcpPort() + "\", facility: auth, appName: edge-1 }");

        refuse(proxy, "198.18.7.2");
        refuse(proxy, "198.18.7.3");

        final List<Received> received = awaitMessages(rsyslog, 2);
        // auth (4) × 8 + warning (4); rsyslog split the stream into two messages by their lengths.
        assertThat(received).hasSize(2);
        assertRefusal(received.get(0), 36, "edge-1", received.get(0).field("client"));
        assertRefusal(received.get(1), 36, "edge-1", received.get(1).field("client"));
        assertThat(received.stream().map(r -> r.field("client"))).containsExactlyInAnyOrder("198.18.7.2", "198.18.7.3");
        assertExactLines(received);
    }

    @Test
    void aRefusalReachesRsyslogOverTlsCheckedAgainstTheCaAndTheHostName() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "syslog-ca");
        final TestCerts.Issued server =
                ca.issue(dir, "syslog", List.of("localhost"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final Rsyslog rsyslog = closeAfter.add(Rsyslog.in(dir)
                .tls(ca.certificatePath(), server.certificate(), server.privateKey())
                .start());
        final RunningProxy proxy = proxy("{ address: \"tls://localhost:" + rsyslog.tlsPort() + "\", ca: "
                + ca.certificatePath() + ", facility: local3 }");

        refuse(proxy, "198.18.7.4");

        final List<Received> received = awaitMessages(rsyslog, 1);
        // local3 (19) × 8 + warning (4)
        assertRefusal(received.get(0), 156, "wsguard", "198.18.7.4");
        assertExactLines(received);
    }

    @Test
    void tlsRefusesAServerWhoseCertificateDoesNotNameTheHost() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "syslog-ca");
        final TestCerts.Issued server =
                ca.issue(dir, "syslog", List.of("other.example"), TestCerts.KeyType.EC, TestCerts.KeyFormat.PKCS8);
        final Rsyslog rsyslog = closeAfter.add(Rsyslog.in(dir)
                .tls(ca.certificatePath(), server.certificate(), server.privateKey())
                .start());
        final RunningProxy proxy =
                proxy("{ address: \"tls://localhost:" + rsyslog.tlsPort() + "\", ca: " + ca.certificatePath() + " }");

        refuse(proxy, "198.18.7.5");
        proxy.server().flushAudit();
        Thread.sleep(2_000);

        assertThat(rsyslog.messages()).isEmpty();
    }

    @Test
    void linesWaitWhileRsyslogIsDownAndArriveWhenItIsBack() throws Exception {
        final Rsyslog rsyslog = closeAfter.add(Rsyslog.in(dir).start());
        final RunningProxy proxy = proxy("{ address: \"tcp://127.0.0.1:" + rsyslog.tcpPort() + "\" }");
        refuse(proxy, "198.18.8.1");
        awaitMessages(rsyslog, 1);

        rsyslog.stop();
        Thread.sleep(300); // the sink sees the connection closed
        refuse(proxy, "198.18.8.2");
        refuse(proxy, "198.18.8.3");
        proxy.server().flushAudit();
        Thread.sleep(500); // a reconnection attempt or two fail meanwhile
        assertThat(rsyslog.messages()).hasSize(1);

        rsyslog.start();
        final List<Received> received = awaitMessages(rsyslog, 3);
        assertThat(received).hasSize(3);
        assertThat(received.stream().map(r -> r.field("client")))
                .containsExactly(
                        "198.18.8.1",
                        received.get(1).field("client"),
                        received.get(2).field("client"));
        assertThat(received.subList(1, 3).stream().map(r -> r.field("client")))
                .containsExactlyInAnyOrder("198.18.8.2", "198.18.8.3");
        assertExactLines(received); // nothing lost: seq 0, 1, 2 and an unbroken chain
        assertThat(proxy.server().metrics().scrape())
                .contains("wsguard_audit_dropped_total{reason=\"buffer_full\"} 0.0");
    }

    @Test
    void pastTheBufferLinesAreDroppedCountedAndReportedWithTheChainsGap() throws Exception {
        final Rsyslog rsyslog = closeAfter.add(Rsyslog.in(dir).start());
        // 2 KiB: three or four messages of some 500 bytes.
        final RunningProxy proxy =
                proxy("{ address: \"tcp://127.0.0.1:" + rsyslog.tcpPort() + "\", bufferSize: 2KiB }");
        refuse(proxy, "198.18.9.1");
        awaitMessages(rsyslog, 1);

        rsyslog.stop();
        Thread.sleep(300);
        for (int i = 2; i <= 12; i++) {
            refuse(proxy, "198.18.9." + i);
        }
        proxy.server().flushAudit();
        final long dropped = droppedBufferFull(proxy);
        assertThat(dropped).isBetween(5L, 10L);

        rsyslog.start();
        await().atMost(Duration.ofSeconds(20))
                .pollInterval(Duration.ofMillis(50))
                .until(() -> rsyslog.messages().stream().anyMatch(m -> m.contains("audit_dropped")));
        final List<Received> received = awaitMessages(rsyslog, 1);
        final Received report = received.get(received.size() - 1);
        final long kept = 11 - dropped;
        assertThat(received).hasSize((int) (1 + kept + 1));
        // local0 × 8 + error (3): lost audit lines
        assertThat(report.pri()).isEqualTo(131);
        assertThat(report.msgId()).isEqualTo("audit");
        final JsonNode line = report.json();
        assertThat(line.get("event").asString()).isEqualTo("audit");
        assertThat(line.get("stage").asString()).isEqualTo("audit");
        assertThat(line.get("reason").asString()).isEqualTo("audit_dropped");
        assertThat(line.get("count").asLong()).isEqualTo(dropped);
        assertThat(line.get("client").isNull()).isTrue();
        final long firstLost = 1 + kept;
        final long lastLost = kept + dropped;
        final String detail = line.get("detail").asString();
        assertThat(detail)
                .startsWith(dropped + " lines dropped between ")
                .contains("(seq " + firstLost + " to " + lastLost + "): " + dropped + " with the buffer full (tcp://"
                        + "127.0.0.1:" + rsyslog.tcpPort() + " unreachable, 2048 bytes buffered); the chain goes on"
                        + " from mac ");

        // The chain as received: 0 .. kept in one piece, then the gap the report names, then the report,
        // which verifies from the last lost line's mac it gives.
        final List<String> msgs = received.stream().map(Received::msg).toList();
        final List<Long> seqs = msgs.stream().map(MacChain::seqOf).toList();
        final List<Long> expected = new ArrayList<>();
        for (long s = 0; s <= kept; s++) {
            expected.add(s);
        }
        expected.add(lastLost + 1);
        assertThat(seqs).containsExactlyElementsOf(expected);
        final byte[] key = KEY.getBytes(StandardCharsets.UTF_8);
        assertThat(MacChain.verify(msgs.subList(0, msgs.size() - 1), key).ok()).isTrue();
        final String lastMac = detail.substring(detail.lastIndexOf(' ') + 1);
        assertThat(MacChain.verify(List.of(report.msg()), key, lastMac, lastLost + 1, -1)
                        .ok())
                .isTrue();
        assertThat(MacChain.verify(msgs, key).ok()).isFalse();
        assertThat(droppedBufferFull(proxy)).isEqualTo(dropped);
    }

    private static long droppedBufferFull(RunningProxy proxy) {
        final Matcher m = Pattern.compile("wsguard_audit_dropped_total\\{reason=\"buffer_full\"} (\\S+)")
                .matcher(proxy.server().metrics().scrape());
        assertThat(m.find()).isTrue();
        return (long) Double.parseDouble(m.group(1));
    }
}
