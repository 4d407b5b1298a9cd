package io.wsguard.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The histograms, {@code upstream} labels and certificate-expiry gauge as a running proxy's admin
 * port serves them on {@code GET /metrics}, after real traffic through a real upstream.
 */
@Timeout(60)
class ProxyMetricsTest {

    private static final String ADMIN = "admin: { host: 127.0.0.1, port: 0 }\n";

    @TempDir
    Path dir;

    @RegisterExtension
    final CloseAfterEach closing = new CloseAfterEach();

    @Test
    void histogramsAndUpstreamLabelsCountRealTraffic() throws Exception {
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final RunningProxy proxy = closing.add(
                RunningProxy.start(PolicyText.in(dir).extra(ADMIN).routes("""
                        - name: echo
                          match: { path: /echo }
                          upstream: { targets: [%s] }
                          auth: none
                        """.formatted(upstream.uri("/echo")))));
        final String target = "ws://127.0.0.1:" + upstream.port() + "/echo";
        final String labels = "route=\"echo\",upstream=\"" + target + "\"";

        final TestClient client = closing.add(new TestClient());
        final TestClient.Recorder ws = client.connect(proxy.uri("/echo"));
        ws.send("x".repeat(10));
        assertThat(ws.next()).isEqualTo("x".repeat(10));
        ws.send("y".repeat(300));
        assertThat(ws.next()).isEqualTo("y".repeat(300));
        try (RawUpgrade refused = RawUpgrade.send(proxy.port(), "/nowhere", Map.of())) {
            assertThat(refused.status()).isEqualTo(404);
        }

        final String open = metrics(proxy);
        assertThat(open.lines())
                .contains(
                        "wsguard_connections_active{" + labels + "} 1.0",
                        "wsguard_messages_total{direction=\"inbound\"," + labels + "} 2.0",
                        "wsguard_messages_total{direction=\"outbound\"," + labels + "} 2.0",
                        "wsguard_bytes_total{direction=\"inbound\"," + labels + "} 310.0",
                        // Whole messages by size, each way: 10 B in the first bucket, 300 B in the third.
                        "wsguard_message_size_bytes_bucket{direction=\"inbound\"," + labels + ",le=\"64.0\"} 1",
                        "wsguard_message_size_bytes_bucket{direction=\"inbound\"," + labels + ",le=\"256.0\"} 1",
                        "wsguard_message_size_bytes_bucket{direction=\"inbound\"," + labels + ",le=\"1024.0\"} 2",
                        "wsguard_message_size_bytes_bucket{direction=\"outbound\"," + labels + ",le=\"1024.0\"} 2",
                        "wsguard_message_size_bytes_count{direction=\"inbound\"," + labels + "} 2",
                        "wsguard_message_size_bytes_sum{direction=\"inbound\"," + labels + "} 310.0",
                        "wsguard_handshake_duration_seconds_count{outcome=\"accepted\",route=\"echo\"} 1",
                        "wsguard_handshake_duration_seconds_count{outcome=\"refused\",route=\"-\"} 1",
                        "wsguard_upstream_connect_duration_seconds_count{" + labels + "} 1",
                        "wsguard_handshake_duration_seconds_bucket{outcome=\"accepted\",route=\"echo\",le=\"+Inf\"} 1");
        assertThat(open).doesNotContain("wsguard_connection_lifetime_seconds_count{" + labels + "} 1");

        ws.session.close();
        assertThat(ws.awaitClose()).isTrue();
        await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(metrics(proxy).lines())
                        .contains(
                                "wsguard_connections_active{" + labels + "} 0.0",
                                "wsguard_connection_lifetime_seconds_count{" + labels + "} 1",
                                "wsguard_connection_lifetime_seconds_bucket{" + labels + ",le=\"10.0\"} 1",
                                // Counted once, when it moved from open to closed.
                                "wsguard_message_size_bytes_count{direction=\"inbound\"," + labels + "} 2"));
    }

    /**
     * The listener's certificate's {@code notAfter} is on {@code /metrics}; once the files are
     * replaced and reloaded, the new certificate's is, and the old one's series is gone.
     */
    @Test
    void certificateExpiryFollowsTheServedCertificate() throws Exception {
        final TestCerts.Authority ca = TestCerts.authority(dir, "ca");
        final TestCerts.Issued first = ca.issue(
                dir,
                "first",
                List.of("localhost", "127.0.0.1"),
                KeyType.EC,
                KeyFormat.PKCS8,
                Instant.now().minusSeconds(60),
                Duration.ofDays(30));
        final Path certificate = dir.resolve("served.crt");
        final Path key = dir.resolve("served.key");
        Files.copy(first.certificate(), certificate);
        Files.copy(first.privateKey(), key);
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final RunningProxy proxy = closing.add(RunningProxy.start(
                PolicyText.in(dir).tls(certificate, key).extra(ADMIN).routes("""
                        - name: echo
                          match: { path: /echo }
                          upstream: { targets: [%s] }
                          auth: none
                        """.formatted(upstream.uri("/echo")))));

        assertThat(expiries(metrics(proxy))).containsExactly(expected(first.x509()));

        final TestCerts.Issued renewed = ca.issue(
                dir,
                "renewed",
                List.of("localhost", "127.0.0.1"),
                KeyType.EC,
                KeyFormat.PKCS8,
                Instant.now().minusSeconds(60),
                Duration.ofDays(90));
        Files.copy(renewed.privateKey(), key, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(renewed.certificate(), certificate, StandardCopyOption.REPLACE_EXISTING);

        await().atMost(Duration.ofSeconds(15))
                .untilAsserted(() -> assertThat(expiries(metrics(proxy))).containsExactly(expected(renewed.x509())));
    }

    /** The gauge's line for {@code certificate} on the default listener: labels and value. */
    private static String expected(X509Certificate certificate) {
        return "wsguard_tls_certificate_expiry_timestamp_seconds{listener=\"wss-0\",names=\"localhost\",serial=\""
                + certificate.getSerialNumber().toString(16) + "\",subject=\""
                + certificate.getSubjectX500Principal().getName() + "\"} "
                + (double) certificate.getNotAfter().toInstant().getEpochSecond();
    }

    private static List<String> expiries(String scrape) {
        return scrape.lines()
                .filter(line -> line.startsWith("wsguard_tls_certificate_expiry_timestamp_seconds{"))
                .map(ProxyMetricsTest::plainNumber)
                .toList();
    }

    /** Prometheus prints 1.7e9 as {@code 1.7E9}: normalized so it compares to a Java double's string. */
    private static String plainNumber(String line) {
        final Matcher value = Pattern.compile(" (\\S+)$").matcher(line);
        return value.find() ? line.substring(0, value.start()) + " " + Double.parseDouble(value.group(1)) : line;
    }

    static String metrics(RunningProxy proxy) throws Exception {
        final HttpResponse<String> response = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create(proxy.server().adminUrl() + "/metrics"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        return response.body();
    }
}
