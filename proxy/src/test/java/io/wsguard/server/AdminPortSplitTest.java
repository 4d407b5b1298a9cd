package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawRequest;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code admin.probes}, on a real proxy: the probes port serves {@code /healthz}, {@code /readyz} and
 * {@code /metrics} (what a kubelet and Prometheus reach on a pod's address) and answers 404 to
 * {@code /admin/*} and the dashboard, token or not, without doing what was asked. The admin port's own
 * refusals (401 without the token, 403 for a non-loopback Host without one) close nothing either.
 * Admin refusals are not audited (the audit log records traffic and policy changes, not operator
 * requests), so each test also checks that the audit log stayed empty: nothing was closed or revoked.
 */
@Timeout(60)
class AdminPortSplitTest {

    private static final String TOKEN = "k8s-admin-t0ken-for-this-test";
    private static final List<String> ADMIN_REQUESTS = List.of(
            "POST /admin/connections/close?route=chat",
            "POST /admin/revoke?sub=alice&ttl=15m",
            "POST /admin/reload",
            "GET /admin/policy",
            "GET /admin/connections",
            "GET /admin/revocations",
            "GET /admin/cluster",
            "GET /admin",
            "GET /");

    @TempDir
    Path dir;

    @RegisterExtension
    final CloseAfterEach closing = new CloseAfterEach();

    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    void probesPortServesHealthReadinessAndMetrics() throws Exception {
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final RunningProxy proxy = closing.add(chatProxy(upstream, "probes: { host: 127.0.0.1, port: 0 }"));
        final String probes = proxy.server().probesUrl();

        assertThat(probes).isNotNull().isNotEqualTo(proxy.server().adminUrl());
        assertThat(send("GET", probes + "/healthz", null).body()).startsWith("ok");
        assertThat(send("GET", probes + "/readyz", null).body()).isEqualTo("ready");
        final HttpResponse<String> metrics = send("GET", probes + "/metrics", null);
        assertThat(metrics.statusCode()).isEqualTo(200);
        assertThat(metrics.body()).contains("wsguard_handshakes_total");
        // A probe's wrong method is still 405, as on the admin port: the probes port is a subset of it.
        assertThat(send("POST", probes + "/healthz", null).statusCode()).isEqualTo(405);
    }

    @Test
    void probesPortAnswers404ToEveryAdminPathAndTheDashboardEvenWithTheTokenAndDoesNothing() throws Exception {
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final TestClient client = closing.add(new TestClient());
        final RunningProxy proxy = closing.add(chatProxy(
                upstream,
                "token: '${ADMIN_TOKEN}', probes: { host: 127.0.0.1, port: 0 }",
                Map.of("ADMIN_TOKEN", TOKEN)));
        final TestClient.Recorder chat = client.connect(proxy.uri("/chat"));
        final String probes = proxy.server().probesUrl();

        for (String request : ADMIN_REQUESTS) {
            final String[] parts = request.split(" ", 2);
            for (String authorization : new String[] {null, "Bearer " + TOKEN}) {
                final HttpResponse<String> response = send(parts[0], probes + parts[1], authorization);
                assertThat(response.statusCode())
                        .as(request + (authorization == null ? "" : " with the token"))
                        .isEqualTo(404);
                assertThat(response.body())
                        .contains("this port serves /healthz, /readyz and /metrics only")
                        .doesNotContain("wsguard-admin");
            }
        }

        // Nothing was closed, revoked or shown: the connection relays, the upstream saw no close,
        // the admin port (with the token) lists no revocation, and the audit log has no line.
        chat.send("still here");
        assertThat(chat.next()).isEqualTo("still here");
        assertThat(upstream.closes()).isEmpty();
        final HttpResponse<String> revocations =
                send("GET", proxy.server().adminUrl() + "/admin/revocations", "Bearer " + TOKEN);
        assertThat(revocations.statusCode()).isEqualTo(200);
        assertThat(revocations.body()).contains("\"revocations\":[]");
        assertThat(proxy.auditLines()).isEmpty();
    }

    @Test
    void probesPortReadinessTurns503WhileDrainingAndHealthStays200() throws Exception {
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final TestClient client = closing.add(new TestClient());
        final RunningProxy proxy = closing.add(chatProxy(
                upstream, "probes: { host: 127.0.0.1, port: 0 }", Map.of(), "proxy: { drainTimeout: 10s }\n"));
        final String probes = proxy.server().probesUrl();
        final TestClient.Recorder open = client.connect(proxy.uri("/chat"));
        // The upstream stops answering, so the drain runs on while the probes are asked.
        upstream.stall();
        open.send("last");
        assertThat(open.next()).isEqualTo("last");

        final CompletableFuture<Void> draining = CompletableFuture.runAsync(proxy.server()::drainAndStop);
        await().atMost(Duration.ofSeconds(5)).until(proxy.server()::isDraining);

        final HttpResponse<String> readiness = send("GET", probes + "/readyz", null);
        assertThat(readiness.statusCode()).isEqualTo(503);
        assertThat(readiness.body()).isEqualTo("draining");
        assertThat(send("GET", probes + "/healthz", null).statusCode()).isEqualTo(200);
        assertThat(draining).isNotDone();
        assertThat(open.awaitClose()).isTrue();
        draining.get(20, TimeUnit.SECONDS);
    }

    @Test
    void adminPortRefusesAMissingOrWrongTokenWith401AndClosesNothing() throws Exception {
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final TestClient client = closing.add(new TestClient());
        final RunningProxy proxy = closing.add(chatProxy(
                upstream,
                "token: '${ADMIN_TOKEN}', probes: { host: 127.0.0.1, port: 0 }",
                Map.of("ADMIN_TOKEN", TOKEN)));
        final TestClient.Recorder chat = client.connect(proxy.uri("/chat"));
        final String close = proxy.server().adminUrl() + "/admin/connections/close?route=chat";

        for (String authorization : new String[] {null, "Bearer wrong-" + TOKEN, "Basic " + TOKEN, TOKEN}) {
            final HttpResponse<String> refused = send("POST", close, authorization);
            assertThat(refused.statusCode()).as(String.valueOf(authorization)).isEqualTo(401);
            assertThat(refused.headers().firstValue("WWW-Authenticate")).hasValue("Bearer realm=\"wsguard-admin\"");
        }
        chat.send("still here");
        assertThat(chat.next()).isEqualTo("still here");
        assertThat(upstream.closes()).isEmpty();
        assertThat(proxy.auditLines()).isEmpty();

        // The token was all that stood in the way: with it, the same request closes the connection.
        assertThat(send("POST", close, "Bearer " + TOKEN).statusCode()).isEqualTo(200);
        assertThat(chat.awaitClose()).isTrue();
        assertThat(chat.closeCode).isEqualTo(1008);
        assertThat(proxy.auditLines()).singleElement().satisfies(line -> assertThat(line)
                .containsEntry("reason", "session_expired")
                .containsEntry("detail", "closed by operator (route=chat)"));
    }

    @Test
    void adminPortWithoutTokenRefusesANonLoopbackHostWith403AndClosesNothing() throws Exception {
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final TestClient client = closing.add(new TestClient());
        final RunningProxy proxy = closing.add(chatProxy(upstream, "probes: { host: 127.0.0.1, port: 0 }"));
        final TestClient.Recorder chat = client.connect(proxy.uri("/chat"));
        final int adminPort = URI.create(proxy.server().adminUrl()).getPort();
        final String target = "/admin/connections/close?route=chat";

        // What a pod-network caller, or a page rebound to 127.0.0.1, sends: its own name as Host.
        final RawRequest refused = RawRequest.send(
                adminPort, "POST", target, List.of("Host: wsguard.example:" + adminPort, "Content-Length: 0"));
        assertThat(refused.status()).isEqualTo(403);
        chat.send("still here");
        assertThat(chat.next()).isEqualTo("still here");
        assertThat(upstream.closes()).isEmpty();
        assertThat(proxy.auditLines()).isEmpty();

        // From this host (kubectl port-forward arrives as localhost), the same request is served.
        final RawRequest served = RawRequest.send(
                adminPort, "POST", target, List.of("Host: localhost:" + adminPort, "Content-Length: 0"));
        assertThat(served.status()).isEqualTo(200);
        assertThat(chat.awaitClose()).isTrue();
        assertThat(chat.closeCode).isEqualTo(1008);
    }

    private RunningProxy chatProxy(UpstreamServer upstream, String adminKeys) throws Exception {
        return chatProxy(upstream, adminKeys, Map.of());
    }

    private RunningProxy chatProxy(UpstreamServer upstream, String adminKeys, Map<String, String> env)
            throws Exception {
        return chatProxy(upstream, adminKeys, env, "");
    }

    private RunningProxy chatProxy(UpstreamServer upstream, String adminKeys, Map<String, String> env, String moreYaml)
            throws Exception {
        return RunningProxy.start(
                PolicyText.in(dir)
                        .routes("""
                        - name: chat
                          match: { path: /chat }
                          upstream: { targets: [%s] }
                          auth: none
                        """.formatted(upstream.uri("/chat")))
                        .extra("admin: { host: 127.0.0.1, port: 0, " + adminKeys + " }\n" + moreYaml),
                env);
    }

    /** {@code method url} with no body and, when not null, that {@code Authorization} header. */
    private HttpResponse<String> send(String method, String url, String authorization) throws Exception {
        final HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .method(method, HttpRequest.BodyPublishers.noBody());
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }
}
