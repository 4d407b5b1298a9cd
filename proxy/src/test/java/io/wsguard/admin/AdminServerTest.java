package io.wsguard.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.Version;
import io.wsguard.audit.MacChain;
import io.wsguard.check.Reason;
import io.wsguard.cluster.Revocations;
import io.wsguard.metrics.Metrics;
import io.wsguard.policy.AdminPolicy;
import io.wsguard.policy.Secret;
import io.wsguard.testing.SchemaChecked;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.eclipse.jetty.client.ContentResponse;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.Request;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpMethod;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(30)
class AdminServerTest {

    private static final String TOKEN = "admin-t0ken-value";
    private static final String JWT_SECRET = "jwt-s3cr3t-never-shown";

    /** A policy-shaped record, as the server would pass from effectivePolicy(). */
    record FakePolicy(String name, Secret jwtSecret, Optional<Secret> token, Path file, Duration timeout) {}

    /** Records what the admin port asked of it. */
    static final class FakeActions implements AdminActions {
        final List<ConnectionFilter> closes = new CopyOnWriteArrayList<>();
        volatile ReloadResult nextReload = ReloadResult.ok();
        volatile boolean failPolicy;
        /** Served instead of the FakePolicy when set. */
        volatile Object policy;

        volatile MacChain.Head auditHead = new MacChain.Head(41, "0f".repeat(32));

        @Override
        public ReloadResult reload() {
            return nextReload;
        }

        @Override
        public Object effectivePolicy() {
            if (failPolicy) {
                throw new IllegalStateException("detail " + JWT_SECRET + " that must not reach the client");
            }
            if (policy != null) {
                return policy;
            }
            return new FakePolicy(
                    "demo",
                    new Secret(JWT_SECRET),
                    Optional.of(new Secret(TOKEN)),
                    Path.of("certs/server.crt"),
                    Duration.ofSeconds(30));
        }

        @Override
        public Optional<MacChain.Head> auditHead() {
            return Optional.ofNullable(auditHead);
        }

        @Override
        public List<ConnectionInfo> connections() {
            return List.of(new ConnectionInfo(
                    "c1", "chat", "203.0.113.7", "alice", Instant.parse("2026-01-01T00:00:00Z"), 12, 3, 4, 30, 40));
        }

        /** Completes later, on another thread, as the proxy's Redis read does. */
        @Override
        public CompletionStage<?> cluster() {
            return CompletableFuture.supplyAsync(
                    () -> Map.of("self", "instance-1", "warnings", List.of()),
                    CompletableFuture.delayedExecutor(200, TimeUnit.MILLISECONDS));
        }

        @Override
        public int close(ConnectionFilter filter) {
            closes.add(filter);
            return filter.matches("alice", "203.0.113.7", "chat") ? 1 : 0;
        }

        /** The real revocations of an instance without Redis; alice's one connection is what closes. */
        final Revocations revocations = Revocations.local(
                (kind, value, detail) -> kind == Revocations.Kind.SUB && value.equals("alice") ? 1 : 0);

        @Override
        public CompletionStage<Broadcast> closeEverywhere(ConnectionFilter filter) {
            return CompletableFuture.completedStage(Broadcast.local(close(filter), "no Redis in this test"));
        }

        @Override
        public CompletionStage<Revocations.Outcome> revoke(Revocations.Kind kind, String value, Duration ttl) {
            return revocations.revoke(kind, value, ttl);
        }

        @Override
        public List<Revocations.InForce> revocations() {
            return revocations.inForce();
        }

        @Override
        public String localOnly() {
            return "no Redis in this test";
        }
    }

    private static final AtomicBoolean READY = new AtomicBoolean(true);
    private static final FakeActions ACTIONS = new FakeActions();
    private static Metrics metrics;
    private static AdminServer withToken;
    private static AdminServer open;
    private static HttpClient client;

    @BeforeAll
    static void start() throws Exception {
        metrics = new Metrics();
        metrics.route("chat").blocked(Reason.PATTERN_DENIED, 2);
        withToken = new AdminServer(
                new AdminPolicy("127.0.0.1", 0, Optional.of(new Secret(TOKEN))), metrics, READY::get, ACTIONS);
        withToken.start();
        // An empty token (admin.token: ${WSGUARD_ADMIN_TOKEN:-} unset) means no token at all.
        open = new AdminServer(
                new AdminPolicy("127.0.0.1", 0, Optional.of(new Secret(""))), metrics, () -> true, ACTIONS);
        open.start();
        client = new HttpClient();
        client.start();
    }

    @AfterAll
    static void stop() throws Exception {
        client.stop();
        withToken.stop();
        open.stop();
        metrics.close();
    }

    private static Request request(AdminServer server, HttpMethod method, String pathAndQuery) {
        return client.newRequest("http://127.0.0.1:" + server.port() + pathAndQuery)
                .method(method);
    }

    private static ContentResponse send(Request request) throws Exception {
        return request.timeout(10, TimeUnit.SECONDS).send();
    }

    private static Request authorized(HttpMethod method, String pathAndQuery) {
        return request(withToken, method, pathAndQuery)
                .headers(h -> h.put(HttpHeader.AUTHORIZATION, "Bearer " + TOKEN));
    }

    @Test
    void bindsAnEphemeralPort() {
        assertThat(withToken.port()).isPositive();
        assertThat(open.port()).isPositive().isNotEqualTo(withToken.port());
    }

    @Test
    void healthzIsOkWithoutToken() throws Exception {
        final ContentResponse response = send(request(withToken, HttpMethod.GET, "/healthz"));

        assertThat(response.getStatus()).isEqualTo(200);
        assertThat(response.getContentAsString()).isEqualTo("ok " + Version.describe());
    }

    @Test
    void readyzTurns503WhileDraining() throws Exception {
        assertThat(send(request(withToken, HttpMethod.GET, "/readyz")).getStatus())
                .isEqualTo(200);
        READY.set(false);
        try {
            final ContentResponse draining = send(request(withToken, HttpMethod.GET, "/readyz"));
            assertThat(draining.getStatus()).isEqualTo(503);
            assertThat(draining.getContentAsString()).isEqualTo("draining");
        } finally {
            READY.set(true);
        }
        assertThat(send(request(withToken, HttpMethod.GET, "/readyz")).getContentAsString())
                .isEqualTo("ready");
    }

    @Test
    void metricsServesPrometheusTextWithoutToken() throws Exception {
        final ContentResponse response = send(request(withToken, HttpMethod.GET, "/metrics"));

        assertThat(response.getStatus()).isEqualTo(200);
        assertThat(response.getHeaders().get(HttpHeader.CONTENT_TYPE))
                .isEqualTo("text/plain; version=0.0.4; charset=utf-8");
        assertThat(response.getContentAsString().lines())
                .contains("wsguard_blocked_total{reason=\"pattern_denied\",route=\"chat\"} 2.0");
    }

    @Test
    void adminPathsNeedTheBearerToken() throws Exception {
        final ContentResponse missing = send(request(withToken, HttpMethod.GET, "/admin/connections"));
        assertThat(missing.getStatus()).isEqualTo(401);
        assertThat(missing.getHeaders().get(HttpHeader.WWW_AUTHENTICATE)).startsWith("Bearer");

        final ContentResponse wrong = send(request(withToken, HttpMethod.GET, "/admin/connections")
                .headers(h -> h.put(HttpHeader.AUTHORIZATION, "Bearer nope")));
        assertThat(wrong.getStatus()).isEqualTo(401);

        final ContentResponse prefix = send(request(withToken, HttpMethod.GET, "/admin/connections")
                .headers(h -> h.put(HttpHeader.AUTHORIZATION, "Bearer " + TOKEN.substring(0, 5))));
        assertThat(prefix.getStatus()).isEqualTo(401);

        final ContentResponse basic = send(request(withToken, HttpMethod.GET, "/admin/connections")
                .headers(h -> h.put(HttpHeader.AUTHORIZATION, "Basic " + TOKEN)));
        assertThat(basic.getStatus()).isEqualTo(401);

        final ContentResponse right = send(authorized(HttpMethod.GET, "/admin/connections"));
        assertThat(right.getStatus()).isEqualTo(200);
        assertThat(right.getHeaders().get(HttpHeader.CONTENT_TYPE)).startsWith("application/json");
        assertThat(right.getContentAsString())
                .isEqualTo("[{\"id\":\"c1\",\"route\":\"chat\",\"client\":\"203.0.113.7\",\"subject\":\"alice\","
                        + "\"jti\":null,\"openedAt\":\"2026-01-01T00:00:00Z\",\"ageSeconds\":12,\"messagesIn\":3,"
                        + "\"messagesOut\":4,\"bytesIn\":30,\"bytesOut\":40,\"path\":\"pump\"}]");
    }

    @Test
    void auditHeadNeedsTheTokenAndNamesTheLastSequenceNumberAndItsMac() throws Exception {
        assertThat(send(request(withToken, HttpMethod.GET, "/admin/audit/head")).getStatus())
                .isEqualTo(401);

        final ContentResponse head = send(authorized(HttpMethod.GET, "/admin/audit/head"));
        assertThat(head.getStatus()).isEqualTo(200);
        assertThat(head.getContentAsString()).isEqualTo("{\"seq\":41,\"mac\":\"" + "0f".repeat(32) + "\"}");

        ACTIONS.auditHead = null;
        try {
            final ContentResponse none = send(authorized(HttpMethod.GET, "/admin/audit/head"));
            assertThat(none.getStatus()).isEqualTo(404);
            assertThat(none.getContentAsString()).contains("audit.integrityKey is not set");
        } finally {
            ACTIONS.auditHead = new MacChain.Head(41, "0f".repeat(32));
        }
    }

    @Test
    void unknownAdminPathsAre401BeforeTheyAre404() throws Exception {
        assertThat(send(request(withToken, HttpMethod.GET, "/admin/nothing")).getStatus())
                .isEqualTo(401);
        assertThat(send(authorized(HttpMethod.GET, "/admin/nothing")).getStatus())
                .isEqualTo(404);
    }

    @Test
    void emptyTokenLeavesAdminOpen() throws Exception {
        assertThat(send(request(open, HttpMethod.GET, "/admin/connections")).getStatus())
                .isEqualTo(200);
    }

    @Test
    void withoutATokenAdminAnswersOnlyRequestsForALoopbackHost() throws Exception {
        // DNS rebinding: a page from attacker.example, its name now resolving to 127.0.0.1, is "same
        // origin" to the browser, but its requests say Host: attacker.example:PORT.
        for (String host :
                List.of("attacker.example", "attacker.example:" + open.port(), "127.0.0.1.nip.io", "10.0.0.7")) {
            final ContentResponse rebound = send(
                    request(open, HttpMethod.GET, "/admin/connections").headers(h -> h.put(HttpHeader.HOST, host)));
            assertThat(rebound.getStatus()).as(host).isEqualTo(403);
            assertThat(rebound.getContentAsString()).contains("loopback");
        }
        for (String host :
                List.of("127.0.0.1:" + open.port(), "localhost", "LOCALHOST:" + open.port(), "[::1]:" + open.port())) {
            assertThat(send(request(open, HttpMethod.GET, "/admin/connections")
                                    .headers(h -> h.put(HttpHeader.HOST, host)))
                            .getStatus())
                    .as(host)
                    .isEqualTo(200);
        }
        // Health and metrics stay reachable under any name (a load balancer's health check, Prometheus).
        assertThat(send(request(open, HttpMethod.GET, "/healthz")
                                .headers(h -> h.put(HttpHeader.HOST, "attacker.example")))
                        .getStatus())
                .isEqualTo(200);
        // With a token, the token decides, whatever the Host.
        assertThat(send(authorized(HttpMethod.GET, "/admin/connections")
                                .headers(h -> h.put(HttpHeader.HOST, "wsguard.internal")))
                        .getStatus())
                .isEqualTo(200);
    }

    @Test
    void effectivePolicyRedactsSecrets() throws Exception {
        final ContentResponse response = send(authorized(HttpMethod.GET, "/admin/policy"));

        assertThat(response.getStatus()).isEqualTo(200);
        final String body = response.getContentAsString();
        assertThat(body).doesNotContain(JWT_SECRET).doesNotContain(TOKEN);
        assertThat(body)
                .isEqualTo("{\"name\":\"demo\",\"jwtSecret\":\"<redacted>\",\"token\":\"<redacted>\","
                        + "\"file\":\"certs/server.crt\",\"timeout\":\"30s\"}");
    }

    @Test
    void effectivePolicyRedactsPasswordsInUrisAndUpstreamHeaderValues(@TempDir Path dir) throws Exception {
        final Path file = Files.writeString(dir.resolve("policy.yaml"), PolicyJsonTest.POLICY_WITH_PLAIN_TEXT_SECRETS);
        ACTIONS.policy = SchemaChecked.load(file, PolicyJsonTest.ENV).policy();
        try {
            final ContentResponse response = send(authorized(HttpMethod.GET, "/admin/policy"));

            assertThat(response.getStatus()).isEqualTo(200);
            final String body = response.getContentAsString();
            assertThat(body).doesNotContain("s3cr3t", "literal-k3y");
            assertThat(body)
                    .contains(
                            "rediss://ratelimit:<redacted>@redis.internal:6380/2",
                            "\"password\":\"<redacted>\"",
                            "wss://relay:<redacted>@chat.internal:9443/ws",
                            "\"X-Api-Key\":\"<redacted>\"",
                            "\"X-User\":\"${jwt.sub}\"");
        } finally {
            ACTIONS.policy = null;
        }
    }

    @Test
    void reloadReportsAppliedOrRejected() throws Exception {
        final ContentResponse applied = send(authorized(HttpMethod.POST, "/admin/reload"));
        assertThat(applied.getStatus()).isEqualTo(200);
        assertThat(applied.getContentAsString()).isEqualTo("{\"status\":\"reloaded\"}");

        ACTIONS.nextReload = ReloadResult.rejected(List.of("policy.yaml:3:5: version: 2 (expected: 1)"));
        try {
            final ContentResponse rejected = send(authorized(HttpMethod.POST, "/admin/reload"));
            assertThat(rejected.getStatus()).isEqualTo(422);
            assertThat(rejected.getContentAsString())
                    .isEqualTo(
                            "{\"status\":\"rejected\",\"problems\":[\"policy.yaml:3:5: version: 2 (expected: 1)\"]}");
        } finally {
            ACTIONS.nextReload = ReloadResult.ok();
        }
    }

    @Test
    void closeNeedsAtLeastOneKnownFilter() throws Exception {
        final int before = ACTIONS.closes.size();

        assertThat(send(authorized(HttpMethod.POST, "/admin/connections/close")).getStatus())
                .isEqualTo(400);
        assertThat(send(authorized(HttpMethod.POST, "/admin/connections/close?clinet=203.0.113.7"))
                        .getStatus())
                .isEqualTo(400);
        assertThat(send(authorized(HttpMethod.POST, "/admin/connections/close?sub="))
                        .getStatus())
                .isEqualTo(400);
        assertThat(send(authorized(HttpMethod.POST, "/admin/connections/close?sub=a&sub=b"))
                        .getStatus())
                .isEqualTo(400);
        assertThat(ACTIONS.closes).hasSize(before);

        final ContentResponse closed =
                send(authorized(HttpMethod.POST, "/admin/connections/close?sub=alice&route=chat"));
        assertThat(closed.getStatus()).isEqualTo(200);
        assertThat(closed.getContentAsString())
                .isEqualTo("{\"closed\":1,\"scope\":\"this instance only\",\"subscribers\":null,"
                        + "\"note\":\"no Redis in this test\"}");
        assertThat(ACTIONS.closes)
                .last()
                .isEqualTo(new ConnectionFilter(Optional.of("alice"), Optional.empty(), Optional.of("chat")));
    }

    @Test
    void revokeRefusesBadInputWithWhatItExpected() throws Exception {
        assertThat(problem("/admin/revoke?sub=alice")).contains("ttl: missing");
        assertThat(problem("/admin/revoke?sub=alice&ttl=soon")).contains("ttl: 'soon' is not a duration");
        assertThat(problem("/admin/revoke?sub=alice&ttl=31d"))
                .contains("ttl: '31d' is out of range (expected: from 1s to 30d)");
        assertThat(problem("/admin/revoke?sub=alice&ttl=500ms")).contains("out of range");
        assertThat(problem("/admin/revoke?ttl=15m")).contains("give exactly one of sub and jti");
        assertThat(problem("/admin/revoke?sub=alice&jti=t1&ttl=15m")).contains("give exactly one of sub and jti");
        assertThat(problem("/admin/revoke?subject=alice&ttl=15m")).contains("unknown parameter 'subject'");
        assertThat(problem("/admin/revoke?sub=&ttl=15m")).contains("sub: give it once, not empty");
        assertThat(problem("/admin/revoke?sub=" + "a".repeat(1025) + "&ttl=15m"))
                .contains("longer than 1024");
        assertThat(ACTIONS.revocations()).isEmpty();
        assertThat(send(authorized(HttpMethod.GET, "/admin/revoke?sub=alice&ttl=15m"))
                        .getStatus())
                .isEqualTo(405);
        assertThat(send(request(withToken, HttpMethod.POST, "/admin/revoke?sub=alice&ttl=15m"))
                        .getStatus())
                .isEqualTo(401);
    }

    @Test
    void revokeAnswersWhatIsInForceAndTheListShowsIt() throws Exception {
        final ContentResponse revoked = send(authorized(HttpMethod.POST, "/admin/revoke?jti=t-42&ttl=10m"));
        assertThat(revoked.getStatus()).isEqualTo(200);
        assertThat(revoked.getContentAsString())
                .contains("\"kind\":\"jti\",\"value\":\"t-42\"")
                .contains("\"ttlSeconds\":600")
                .contains("\"closed\":0")
                .contains("\"scope\":\"this instance only\"")
                .contains("rateLimitStore is local");

        final ContentResponse list = send(authorized(HttpMethod.GET, "/admin/revocations"));
        assertThat(list.getStatus()).isEqualTo(200);
        assertThat(list.getContentAsString())
                .startsWith("{\"scope\":\"this instance only\",\"note\":\"no Redis in this test\",\"revocations\":[")
                .contains("\"kind\":\"jti\",\"value\":\"t-42\",\"until\":\"")
                .containsPattern("\"remainingSeconds\":(599|600),\"by\":\"[^\"]+\"");
    }

    private static String problem(String pathAndQuery) throws Exception {
        final ContentResponse response = send(authorized(HttpMethod.POST, pathAndQuery));
        assertThat(response.getStatus()).as(pathAndQuery).isEqualTo(400);
        return response.getContentAsString();
    }

    @Test
    void closeNeedsTheTokenToo() throws Exception {
        assertThat(send(request(withToken, HttpMethod.POST, "/admin/connections/close?sub=alice"))
                        .getStatus())
                .isEqualTo(401);
    }

    @Test
    void crossSitePostIsRefused() throws Exception {
        final ContentResponse response = send(request(open, HttpMethod.POST, "/admin/connections/close?sub=alice")
                .headers(h -> h.put(HttpHeader.ORIGIN, "https://evil.example")));
        assertThat(response.getStatus()).isEqualTo(403);

        final ContentResponse sameOrigin = send(request(open, HttpMethod.POST, "/admin/reload")
                .headers(h -> h.put(HttpHeader.ORIGIN, "http://127.0.0.1:" + open.port())));
        assertThat(sameOrigin.getStatus()).isEqualTo(200);
    }

    @Test
    void unknownPathIs404AndWrongMethodIs405() throws Exception {
        assertThat(send(request(withToken, HttpMethod.GET, "/nothing")).getStatus())
                .isEqualTo(404);

        final ContentResponse wrongMethod = send(request(withToken, HttpMethod.POST, "/healthz"));
        assertThat(wrongMethod.getStatus()).isEqualTo(405);
        assertThat(wrongMethod.getHeaders().get(HttpHeader.ALLOW)).isEqualTo("GET");

        assertThat(send(authorized(HttpMethod.GET, "/admin/reload")).getStatus())
                .isEqualTo(405);
        assertThat(send(authorized(HttpMethod.DELETE, "/admin/connections")).getStatus())
                .isEqualTo(405);
    }

    @Test
    void clusterIsAnsweredWhenTheProxysStageCompletes() throws Exception {
        assertThat(send(request(withToken, HttpMethod.GET, "/admin/cluster")).getStatus())
                .isEqualTo(401);

        final ContentResponse response = send(authorized(HttpMethod.GET, "/admin/cluster"));

        assertThat(response.getStatus()).isEqualTo(200);
        assertThat(response.getHeaders().get(HttpHeader.CONTENT_TYPE)).isEqualTo("application/json");
        assertThat(response.getContentAsString()).contains("\"self\":\"instance-1\"");
    }

    @Test
    void dashboardIsSelfContained() throws Exception {
        final ContentResponse response = send(request(withToken, HttpMethod.GET, "/"));

        assertThat(response.getStatus()).isEqualTo(200);
        assertThat(response.getHeaders().get(HttpHeader.CONTENT_TYPE)).startsWith("text/html");
        final String html = response.getContentAsString();
        assertThat(html)
                .contains(
                        "<svg",
                        "/metrics",
                        "/admin/connections",
                        "/admin/cluster",
                        "sessionStorage",
                        "wsguard_blocked_total",
                        "Authorization");
        assertThat(html).doesNotContain("http://").doesNotContain("https://").doesNotContain("src=");
        final String csp = response.getHeaders().get("Content-Security-Policy");
        assertThat(csp)
                .contains("default-src 'none'", "script-src 'sha256-", "connect-src 'self'")
                .doesNotContain("unsafe-inline");
        assertThat(csp).contains(InlineCsp.hashOf(html, "<script>", "</script>"));
    }

    @Test
    void failingActionIs500WithoutItsMessage() throws Exception {
        ACTIONS.failPolicy = true;
        try {
            final ContentResponse response = send(authorized(HttpMethod.GET, "/admin/policy"));
            assertThat(response.getStatus()).isEqualTo(500);
            assertThat(response.getContentAsString()).doesNotContain(JWT_SECRET).contains("internal error");
        } finally {
            ACTIONS.failPolicy = false;
        }
    }
}
