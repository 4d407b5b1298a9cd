package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.eclipse.jetty.websocket.api.exceptions.UpgradeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** JWT at the handshake, against a running proxy: token sources, refusals, claims upstream, expiry. */
@Timeout(60)
class AuthTest {

    static final String SECRET = "an HS256 test secret of at least thirty-two bytes";

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;
    static TestClient client;

    static RSAKey signingKey;
    static RSAKey otherKey;

    @BeforeAll
    static void start() throws Exception {
        signingKey = new RSAKeyGenerator(2048).keyID("k1").generate();
        otherKey = new RSAKeyGenerator(2048).keyID("k9").generate();
        final Path jwks = dir.resolve("jwks.json");
        Files.writeString(jwks, new JWKSet(signingKey.toPublicJWK()).toString());
        upstream = new UpstreamServer();
        upstream.acceptSubprotocol("chat.v1");
        proxy = RunningProxy.start(PolicyText.in(dir).routes("""
                - name: api
                  match: { path: /api }
                  upstream:
                    targets: [%1$s]
                    headers:
                      forward: [X-User, x-scope, Cookie]
                      set: { X-User: "${jwt.sub}", X-Scope: "${jwt.scope}", X-Team: "team-${jwt.team}" }
                  auth:
                    jwt:
                      issuer: https://id.test/
                      audience: [chat-api]
                      algorithms: [RS256]
                      jwksFile: %3$s
                      clockSkew: 0s
                      tokenSources: [header, subprotocol, "query:access_token", "cookie:token"]
                      require: { scope: "chat:write" }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt:
                      issuer: https://id.test/
                      audience: [chat-api]
                      algorithms: [RS256]
                      jwksFile: %3$s
                      clockSkew: 0s
                      require: { scope: "chat:write" }
                - name: idp-down
                  match: { path: /idp-down }
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [RS256], jwksUri: "https://127.0.0.1:1/jwks.json" }
                - name: solo
                  match: { path: /solo }
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s" }
                  limits: { connections: { perSubject: 1 } }
                """.formatted(upstream.uri("/echo"), SECRET, jwks)));
        client = new TestClient();
    }

    @AfterAll
    static void stop() throws Exception {
        client.close();
        proxy.close();
        upstream.close();
    }

    static JWTClaimsSet.Builder claims(String sub, Duration ttl, Map<String, Object> extra) {
        final Instant now = Instant.now();
        final JWTClaimsSet.Builder claims = new JWTClaimsSet.Builder()
                .subject(sub)
                .issuer("https://id.test/")
                .audience("chat-api")
                .issueTime(Date.from(now))
                .expirationTime(Date.from(now.plus(ttl)))
                .claim("scope", "chat:read chat:write");
        extra.forEach(claims::claim);
        return claims;
    }

    static String signed(JWSHeader header, JWTClaimsSet claims, com.nimbusds.jose.JWSSigner signer) throws Exception {
        final SignedJWT jwt = new SignedJWT(header, claims);
        jwt.sign(signer);
        return jwt.serialize();
    }

    static JWSHeader.Builder rs256(RSAKey key) {
        return new JWSHeader.Builder(JWSAlgorithm.RS256)
                .type(JOSEObjectType.JWT)
                .keyID(key.getKeyID());
    }

    /** A valid RS256 token from the route's key set. */
    static String token(String sub, Duration ttl, Map<String, Object> extra) throws Exception {
        return signed(rs256(signingKey).build(), claims(sub, ttl, extra).build(), new RSASSASigner(signingKey));
    }

    static String hs256(String sub) throws Exception {
        return signed(
                new JWSHeader.Builder(JWSAlgorithm.HS256).build(),
                claims(sub, Duration.ofMinutes(5), Map.of()).build(),
                new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
    }

    static String b64(String json) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(json.getBytes(StandardCharsets.UTF_8));
    }

    /** The attacks of the issue's table: name, token, expected reason. */
    static Stream<Arguments> attacks() throws Exception {
        final String good = token("erin", Duration.ofMinutes(5), Map.of());
        final String[] parts = good.split("\\.", -1);
        final Instant now = Instant.now();
        final String payload =
                claims("erin", Duration.ofMinutes(5), Map.of()).build().toString();
        return Stream.of(
                Arguments.of(
                        "alg none",
                        b64("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." + b64(payload) + ".",
                        "token_invalid"),
                // HS256 MACed with the public key the route verifies RS256 with: the classic confusion.
                Arguments.of(
                        "HS/RS confusion",
                        signed(
                                new JWSHeader.Builder(JWSAlgorithm.HS256)
                                        .keyID("k1")
                                        .build(),
                                claims("erin", Duration.ofMinutes(5), Map.of()).build(),
                                new MACSigner(signingKey.toPublicKey().getEncoded())),
                        "token_invalid"),
                Arguments.of("expired", token("erin", Duration.ofMinutes(-1), Map.of()), "token_expired"),
                Arguments.of(
                        "not yet valid",
                        signed(
                                rs256(signingKey).build(),
                                claims("erin", Duration.ofMinutes(10), Map.of())
                                        .notBeforeTime(Date.from(now.plusSeconds(300)))
                                        .build(),
                                new RSASSASigner(signingKey)),
                        "token_invalid"),
                Arguments.of(
                        "wrong iss",
                        signed(
                                rs256(signingKey).build(),
                                claims("erin", Duration.ofMinutes(5), Map.of())
                                        .issuer("https://evil.test/")
                                        .build(),
                                new RSASSASigner(signingKey)),
                        "token_invalid"),
                Arguments.of(
                        "wrong aud",
                        signed(
                                rs256(signingKey).build(),
                                claims("erin", Duration.ofMinutes(5), Map.of())
                                        .audience("other-api")
                                        .build(),
                                new RSASSASigner(signingKey)),
                        "token_invalid"),
                Arguments.of(
                        "missing claim",
                        token("erin", Duration.ofMinutes(5), Map.of("scope", "chat:read")),
                        "claim_denied"),
                Arguments.of(
                        "unknown kid",
                        signed(
                                rs256(otherKey).build(),
                                claims("erin", Duration.ofMinutes(5), Map.of()).build(),
                                new RSASSASigner(otherKey)),
                        "token_invalid"),
                Arguments.of(
                        "tampered payload",
                        parts[0] + "." + b64(payload.replace("erin", "root")) + "." + parts[2],
                        "token_invalid"),
                Arguments.of(
                        "foreign jku",
                        signed(
                                rs256(otherKey)
                                        .jwkURL(URI.create("https://evil.test/jwks.json"))
                                        .build(),
                                claims("erin", Duration.ofMinutes(5), Map.of()).build(),
                                new RSASSASigner(otherKey)),
                        "token_invalid"),
                Arguments.of("truncated", good.substring(0, good.length() - 20), "token_invalid"),
                Arguments.of("garbage", "bm90.YSBqd3Q.at-all", "token_invalid"));
    }

    static int refusal(String path, Map<String, String> headers) {
        final ExecutionException failure =
                assertThrows(ExecutionException.class, () -> client.connectAsync(proxy.uri(path), headers)
                        .get(10, TimeUnit.SECONDS));
        return ((UpgradeException) failure.getCause()).getResponseStatusCode();
    }

    /**
     * As {@link #refusal}, but the whole response head: the upgrade is written by hand on a plain
     * socket, since the WebSocket client's {@code UpgradeException} keeps the status and drops the
     * headers ({@code WWW-Authenticate}). The socket is closed; status and headers stay readable.
     */
    static RawUpgrade refusalHead(String path, Map<String, String> headers) throws IOException {
        try (RawUpgrade raw = RawUpgrade.send(proxy.port(), path, headers)) {
            return raw;
        }
    }

    /**
     * The sum of {@code count} over the audit lines of {@code route} with {@code reason}: exact across coalesced lines.
     */
    static long audited(String route, String reason) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> route.equals(line.get("route")) && reason.equals(line.get("reason")))
                .mapToLong(line -> ((Number) line.get("count")).longValue())
                .sum();
    }

    /**
     * The README's 401 refusals: no token, a token that is not one, an expired one; the headers and the audit reason.
     */
    static Stream<Arguments> unauthenticated() throws Exception {
        return Stream.of(
                Arguments.of("no token", Map.of(), "token_missing"),
                Arguments.of("garbage token", Map.of("Authorization", "Bearer bm90.YSBqd3Q.at-all"), "token_invalid"),
                Arguments.of(
                        "expired token",
                        Map.of("Authorization", "Bearer " + token("erin", Duration.ofMinutes(-1), Map.of())),
                        "token_expired"));
    }

    @Test
    void bearerHeaderTokenPassesAndTheUpstreamGetsClaimsNotTheToken() throws Exception {
        final String token = token("alice", Duration.ofMinutes(5), Map.of("team", "blue"));
        final int before = upstream.upgradeHeaders().size();
        final TestClient.Recorder ws = client.connect(
                proxy.uri("/api"), Map.of("Authorization", "Bearer " + token, "X-User", "mallory"), List.of());
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

        final TestClient.Recorder withApp =
                client.connect(proxy.uri("/api"), Map.of(), List.of("chat.v1", "bearer." + token));
        assertThat(withApp.session.getUpgradeResponse().getAcceptedSubProtocol())
                .isEqualTo("chat.v1");
        assertThat(upstream.upgradeHeaders().get(before + 1).get("sec-websocket-protocol"))
                .containsExactly("chat.v1");
        withApp.session.close();
    }

    @Test
    void queryTokenIsRemovedFromTheForwardedQuery() throws Exception {
        final String token = token("carol", Duration.ofMinutes(5), Map.of());
        final int before = upstream.upgradeUris().size();
        client.connect(proxy.uri("/api?room=7&access_token=" + token + "&x=1"), Map.of(), List.of())
                .session
                .close();
        assertThat(upstream.upgradeUris().get(before)).isEqualTo("/echo?room=7&x=1");
    }

    @Test
    void cookieTokenPassesAndStaysOutOfTheForwardedCookies() throws Exception {
        final String token = token("dave", Duration.ofMinutes(5), Map.of());
        final int before = upstream.upgrades();
        client.connect(proxy.uri("/api"), Map.of("Cookie", "theme=dark; token=" + token + "; lang=en"), List.of())
                .session
                .close();
        // The route forwards Cookie: the other cookies go on, the token (a token source) does not.
        assertThat(upstream.upgradeHeaders().get(before).get("cookie")).containsExactly("theme=dark; lang=en");
    }

    @Test
    void missingTokenIs401WithChallengeAndAudited() throws Exception {
        final int before = upstream.upgrades();
        assertThat(refusal("/api", Map.of())).isEqualTo(401);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "token_missing")
                .containsEntry("status", 401)
                .containsEntry("route", "api"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("unauthenticated")
    void unauthenticatedUpgradeIs401WithABearerChallengeAndAudited(
            String name, Map<String, String> headers, String reason) throws Exception {
        final int before = upstream.upgrades();
        final long auditedBefore = audited("api", reason);
        final RawUpgrade refused = refusalHead("/api", headers);
        assertThat(refused.status()).isEqualTo(401);
        // RFC 6750 §3.1: a request without credentials gets the bare challenge, not an error code
        // (every 401 could carry error="invalid_token"; the README says why wsguard follows the RFC).
        assertThat(refused.header("WWW-Authenticate"))
                .isEqualTo(reason.equals("token_missing") ? "Bearer" : "Bearer error=\"invalid_token\"");
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(audited("api", reason)).isEqualTo(auditedBefore + 1);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", reason)
                .containsEntry("status", 401)
                .containsEntry("route", "api"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("attacks")
    void attackIsRefusedBeforeTheUpstreamAndAuditedWithoutTheToken(String name, String token, String reason)
            throws Exception {
        final int expectedStatus = reason.equals("claim_denied") ? 403 : 401;
        final int before = upstream.upgrades();
        assertThat(refusal("/api", Map.of("Authorization", "Bearer " + token))).isEqualTo(expectedStatus);
        assertThat(upstream.upgrades()).isEqualTo(before);
        final List<Map<String, Object>> lines = proxy.auditLines();
        assertThat(lines).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", reason)
                .containsEntry("status", expectedStatus)
                .containsEntry("route", "api"));
        final String metrics = proxy.server().metrics().scrape();
        assertThat(metrics)
                .contains("wsguard_blocked_total{reason=\"" + reason + "\",route=\"api\"}")
                .contains("wsguard_handshakes_total{outcome=\"" + reason + "\",route=\"api\"}");
        final String text = lines.toString();
        for (String part : token.split("\\.", -1)) {
            if (part.length() > 8) {
                assertThat(text).as("the audit log holds no part of the token").doesNotContain(part);
                assertThat(metrics).as("the metrics hold no part of the token").doesNotContain(part);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("attacks")
    void monitorModeLetsEachAttackThroughAndAuditsIt(String name, String token, String reason) throws Exception {
        final int before = upstream.upgrades();
        final TestClient.Recorder ws =
                client.connect(proxy.uri("/watch"), Map.of("Authorization", "Bearer " + token), List.of());
        ws.send("through");
        assertThat(ws.next()).isEqualTo("through");
        ws.session.close();
        assertThat(upstream.upgrades()).isEqualTo(before + 1);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "monitored")
                .containsEntry("reason", reason)
                .containsEntry("route", "watch"));
    }

    @Test
    void anUnreachableKeySetIs503CheckFailedNotTheClientsFault() throws Exception {
        final int before = upstream.upgrades();
        assertThat(refusal(
                        "/idp-down",
                        Map.of("Authorization", "Bearer " + token("ivan", Duration.ofMinutes(5), Map.of()))))
                .isEqualTo(503);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "check_failed")
                .containsEntry("status", 503)
                .containsEntry("route", "idp-down"));
    }

    @Test
    void aSubjectGetsOnlyItsConnectionsPerSubjectWhateverItsAddress() throws Exception {
        final TestClient.Recorder first =
                client.connect(proxy.uri("/solo"), Map.of("Authorization", "Bearer " + hs256("gina")), List.of());
        final int before = upstream.upgrades();
        assertThat(refusal("/solo", Map.of("Authorization", "Bearer " + hs256("gina"))))
                .isEqualTo(429);
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "connection_limit")
                .containsEntry("sub", "gina")
                .containsEntry("route", "solo"));
        // Another subject is not affected; the slot comes back when the connection closes.
        client.connect(proxy.uri("/solo"), Map.of("Authorization", "Bearer " + hs256("hank")), List.of())
                .session
                .close();
        first.session.close();
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> client.connect(
                        proxy.uri("/solo"), Map.of("Authorization", "Bearer " + hs256("gina")), List.of())
                .session
                .close());
    }

    @Test
    void openConnectionIsClosedWith1008WhenItsTokenExpires() throws Exception {
        final TestClient.Recorder ws = client.connect(
                proxy.uri("/api"),
                Map.of("Authorization", "Bearer " + token("frank", Duration.ofSeconds(2), Map.of())),
                List.of());
        final long opened = System.nanoTime();
        assertThat(ws.closed.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(ws.closeCode).isEqualTo(1008);
        // exp has one-second resolution: closed within a second of it.
        assertThat(Duration.ofNanos(System.nanoTime() - opened))
                .isBetween(Duration.ofMillis(900), Duration.ofMillis(3200));
        await().atMost(Duration.ofSeconds(5))
                .untilAsserted(() -> assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                        .containsEntry("reason", "session_expired")
                        .containsEntry("sub", "frank")
                        .containsEntry("closeCode", 1008)));
    }
}
