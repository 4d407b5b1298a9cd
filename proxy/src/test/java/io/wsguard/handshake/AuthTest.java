package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.websocket.api.exceptions.UpgradeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** JWT at the handshake, against a running proxy: token sources, refusals, claims upstream, expiry. */
@Timeout(60)
class AuthTest {

    static final String SECRET = "an HS256 test secret of at least thirty-two bytes";

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        upstream.acceptSubprotocol("chat.v1");
        proxy = RunningProxy.start(dir, """
                - name: api
                  match: { path: /api }
                  upstream:
                    targets: [%1$s]
                    headers:
                      forward: [X-User, x-scope]
                      set: { X-User: "${jwt.sub}", X-Scope: "${jwt.scope}", X-Team: "team-${jwt.team}" }
                  auth:
                    jwt:
                      issuer: https://id.test/
                      audience: [chat-api]
                      algorithms: [HS256]
                      secret: "%2$s"
                      clockSkew: 0s
                      tokenSources: [header, subprotocol, "query:access_token", "cookie:token"]
                      require: { scope: "chat:write" }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s", issuer: https://id.test/ }
                """.formatted(upstream.uri("/echo"), SECRET), "");
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    static String token(String sub, Duration ttl, Map<String, Object> extra) throws Exception {
        final Instant now = Instant.now();
        final JWTClaimsSet.Builder claims = new JWTClaimsSet.Builder()
                .subject(sub).issuer("https://id.test/").audience("chat-api")
                .issueTime(Date.from(now)).expirationTime(Date.from(now.plus(ttl)))
                .claim("scope", "chat:read chat:write");
        extra.forEach(claims::claim);
        final SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.HS256).type(JOSEObjectType.JWT).build(), claims.build());
        jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
        return jwt.serialize();
    }

    static int refusal(String path, Map<String, String> headers) {
        final ExecutionException failure = assertThrows(ExecutionException.class,
                () -> client.connectAsync(proxy.uri(path), headers).get(10, TimeUnit.SECONDS));
        return ((UpgradeException) failure.getCause()).getResponseStatusCode();
    }

    @Test
    void bearerHeaderTokenPassesAndTheUpstreamGetsClaimsNotTheToken() throws Exception {
        final String token = token("alice", Duration.ofMinutes(5), Map.of("team", "blue"));
        final int before = upstream.upgradeHeaders().size();
        final TestClient.Recorder ws = client.connect(proxy.uri("/api"),
                Map.of("Authorization", "Bearer " + token, "X-User", "mallory"), List.of());
        ws.send("hello");
        assertThat(ws.next()).isEqualTo("hello");
        final Map<String, List<String>> seen = upstream.upgradeHeaders().get(before);
        assertThat(seen.get("x-user")).containsExactly("alice");
        assertThat(seen.get("x-scope")).containsExactly("chat:read chat:write");
        assertThat(seen.get("x-team")).containsExactly("team-blue");
        ws.session.close();
    }

    @Test
    void subprotocolTokenIsStrippedAndAnsweredWhenItWasAllTheClientOffered() throws Exception {
        final String token = token("bob", Duration.ofMinutes(5), Map.of());
        final int before = upstream.upgradeHeaders().size();
        final TestClient.Recorder only = client.connect(proxy.uri("/api"), Map.of(), List.of("bearer." + token));
        assertThat(only.session.getUpgradeResponse().getAcceptedSubProtocol()).isEqualTo("bearer." + token);
        assertThat(upstream.upgradeHeaders().get(before)).doesNotContainKey("sec-websocket-protocol");
        only.session.close();

        final TestClient.Recorder withApp = client.connect(proxy.uri("/api"), Map.of(), List.of("chat.v1", "bearer." + token));
        assertThat(withApp.session.getUpgradeResponse().getAcceptedSubProtocol()).isEqualTo("chat.v1");
        assertThat(upstream.upgradeHeaders().get(before + 1).get("sec-websocket-protocol")).containsExactly("chat.v1");
        withApp.session.close();
    }

    @Test
    void queryTokenIsRemovedFromTheForwardedQuery() throws Exception {
        final String token = token("carol", Duration.ofMinutes(5), Map.of());
        final int before = upstream.upgradeUris().size();
        client.connect(proxy.uri("/api?room=7&access_token=" + token + "&x=1"), Map.of(), List.of()).session.close();
        assertThat(upstream.upgradeUris().get(before)).isEqualTo("/echo?room=7&x=1");
    }

    @Test
    void cookieTokenPasses() throws Exception {
        final String token = token("dave", Duration.ofMinutes(5), Map.of());
        client.connect(proxy.uri("/api"), Map.of("Cookie", "theme=dark; token=" + token), List.of()).session.close();
    }

    @Test
    void missingTokenIs401WithChallengeAndAudited() throws Exception {
        final int before = upstream.upgrades();
        assertThat(refusal("/api", Map.of())).isEqualTo(401);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "token_missing").containsEntry("status", 401).containsEntry("route", "api"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"garbage", "expired", "claim", "tampered"})
    void badTokensAreRefusedAndTheTokenNeverReachesTheAuditLog(String kind) throws Exception {
        final String good = token("erin", Duration.ofMinutes(5), Map.of());
        final String token = switch (kind) {
            case "garbage" -> "not.a.jwt";
            case "expired" -> token("erin", Duration.ofSeconds(-60), Map.of());
            case "claim" -> token("erin", Duration.ofMinutes(5), Map.of("scope", "chat:read"));
            default -> good.substring(0, good.indexOf('.') + 3) + (good.charAt(good.indexOf('.') + 3) == 'A' ? 'B' : 'A')
                    + good.substring(good.indexOf('.') + 4);
        };
        final int expectedStatus = kind.equals("claim") ? 403 : 401;
        final String expectedReason = switch (kind) {
            case "expired" -> "token_expired";
            case "claim" -> "claim_denied";
            default -> "token_invalid";
        };
        final int before = upstream.upgrades();
        assertThat(refusal("/api", Map.of("Authorization", "Bearer " + token))).isEqualTo(expectedStatus);
        assertThat(upstream.upgrades()).isEqualTo(before);
        final List<Map<String, Object>> lines = proxy.auditLines();
        assertThat(lines).anySatisfy(line -> assertThat(line).containsEntry("reason", expectedReason).containsEntry("status", expectedStatus));
        final String signature = token.substring(token.lastIndexOf('.') + 1);
        assertThat(lines.toString()).doesNotContain(token).doesNotContain(signature.isEmpty() ? token : signature);
    }

    @Test
    void openConnectionIsClosedWith1008WhenItsTokenExpires() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/api"),
                Map.of("Authorization", "Bearer " + token("frank", Duration.ofSeconds(2), Map.of())), List.of());
        final long opened = System.nanoTime();
        assertThat(ws.closed.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        // exp has one-second resolution: closed within a second of it.
        assertThat(Duration.ofNanos(System.nanoTime() - opened)).isBetween(Duration.ofMillis(900), Duration.ofMillis(3200));
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "session_expired").containsEntry("sub", "frank").containsEntry("closeCode", 1008)));
    }

    @Test
    void monitorModeLetsABadTokenThroughAndAuditsIt() throws Exception {
        final TestClient.Recorder ws = client.connect(proxy.uri("/watch"), Map.of("Authorization", "Bearer nonsense"), List.of());
        ws.send("through");
        assertThat(ws.next()).isEqualTo("through");
        ws.session.close();
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "monitored").containsEntry("reason", "token_invalid").containsEntry("route", "watch"));
    }
}
