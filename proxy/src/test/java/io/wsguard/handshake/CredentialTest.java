package io.wsguard.handshake;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.Payload;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What credential reaches the upstream, against a running proxy: one credential per request, the
 * verified token and nothing else forwarded as {@code Authorization}, a subject where limits count
 * by subject, and an {@code exp} in range.
 *
 * <p>Each request comes from its own client address (X-Forwarded-For from a trusted 127.0.0.1), so
 * that its refusal is an audit line of its own: refusals from one client coalesce for a second.
 */
@Timeout(60)
class CredentialTest {

    static final String SECRET = "an HS256 test secret of at least thirty-two bytes";
    static final AtomicInteger CLIENTS = new AtomicInteger();

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: every
                  match: { path: /every }
                  upstream:
                    targets: [%1$s]
                    headers: { forward: [Authorization, Cookie], set: { X-User: "${jwt.sub}" } }
                  auth:
                    jwt:
                      algorithms: [HS256]
                      secret: "%2$s"
                      tokenSources: [subprotocol, header, "query:access_token", "cookie:token"]
                - name: subprotocol-only
                  match: { path: /subprotocol-only }
                  upstream:
                    targets: [%1$s]
                    headers: { forward: [authorization] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s", tokenSources: [subprotocol] }
                - name: not-forwarded
                  match: { path: /not-forwarded }
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s" }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream:
                    targets: [%1$s]
                    headers: { forward: [Authorization] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s", tokenSources: [subprotocol, header] }
                - name: messages-per-subject
                  match: { path: /messages-per-subject }
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s" }
                  limits: { messages: { perSubject: { rate: 100/s } } }
                - name: connections-per-subject
                  match: { path: /connections-per-subject }
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s" }
                  limits: { connections: { perSubject: 5 } }
                - name: no-expiry
                  match: { path: /no-expiry }
                  upstream: { targets: [%1$s] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s", allowNoExpiry: true }
                """.formatted(upstream.uri("/echo"), SECRET))
                .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n"));
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    static JWTClaimsSet.Builder claims(String sub) {
        final Instant now = Instant.now();
        return new JWTClaimsSet.Builder()
                .subject(sub)
                .issueTime(Date.from(now))
                .expirationTime(Date.from(now.plus(Duration.ofMinutes(5))));
    }

    static String token(JWTClaimsSet claims) throws Exception {
        final SignedJWT jwt = new SignedJWT(new JWSHeader(JWSAlgorithm.HS256), claims);
        jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
        return jwt.serialize();
    }

    static String token(String sub) throws Exception {
        return token(claims(sub).build());
    }

    /** A token whose payload is {@code json} as written: numbers nimbus' claims builder would not produce. */
    static String rawToken(String json) throws Exception {
        final JWSObject jws = new JWSObject(new JWSHeader(JWSAlgorithm.HS256), new Payload(json));
        jws.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
        return jws.serialize();
    }

    /** The upgrade for {@code path} from a client address of its own, with {@code lines} as header lines. */
    static Sent send(String path, List<String> lines) throws IOException {
        final String client = "10.14.0." + CLIENTS.incrementAndGet();
        final List<String> all = new ArrayList<>(lines);
        all.add("X-Forwarded-For: " + client);
        final int before = upstream.upgrades();
        try (RawUpgrade raw = RawUpgrade.sendLines(proxy.port(), path, all)) {
            return new Sent(client, raw.status(), raw.header("WWW-Authenticate"), before);
        }
    }

    record Sent(String client, int status, String challenge, int upgradesBefore) {
        /** The headers the upstream got with this upgrade. */
        Map<String, List<String>> upstreamHeaders() {
            assertThat(upstream.upgrades()).as("the upstream saw this upgrade").isEqualTo(upgradesBefore + 1);
            return upstream.upgradeHeaders().get(upgradesBefore);
        }
    }

    /** 401 token_invalid with {@code detail}: no upgrade upstream, one audit line for this client. */
    static void assertRefused(Sent sent, String route, String detail) throws Exception {
        assertThat(sent.status()).isEqualTo(401);
        assertThat(sent.challenge()).isEqualTo("Bearer error=\"invalid_token\"");
        assertThat(upstream.upgrades()).as("the upstream saw no upgrade").isEqualTo(sent.upgradesBefore());
        assertThat(proxy.auditLines())
                .filteredOn(line -> sent.client().equals(line.get("client")))
                .singleElement()
                .satisfies(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "handshake")
                        .containsEntry("reason", "token_invalid")
                        .containsEntry("status", 401)
                        .containsEntry("route", route)
                        .containsEntry("detail", detail));
    }

    // --- one credential per request ---

    static Stream<Arguments> severalCredentials() throws Exception {
        final String alice = token("alice");
        final String mallory = token("mallory");
        return Stream.of(
                Arguments.of(
                        "a bearer. subprotocol and a forged Authorization header",
                        List.of("Sec-WebSocket-Protocol: bearer." + alice, "Authorization: Bearer forged.by.client"),
                        "subprotocol and header"),
                Arguments.of(
                        "two valid tokens of different subjects, subprotocol and header",
                        List.of("Sec-WebSocket-Protocol: bearer." + alice, "Authorization: Bearer " + mallory),
                        "subprotocol and header"),
                Arguments.of(
                        "two Authorization fields, the first valid",
                        List.of("Authorization: Bearer " + alice, "Authorization: Bearer forged.by.client"),
                        "two in header"),
                Arguments.of(
                        "a Basic Authorization next to a subprotocol token",
                        List.of("Sec-WebSocket-Protocol: bearer." + alice, "Authorization: Basic YWxpY2U6c2VjcmV0"),
                        "subprotocol and header"),
                Arguments.of(
                        "two bearer. subprotocols",
                        List.of("Sec-WebSocket-Protocol: chat.v1, bearer." + alice + ", bearer." + mallory),
                        "two in subprotocol"),
                Arguments.of(
                        "two Sec-WebSocket-Protocol fields with a bearer. each",
                        List.of("Sec-WebSocket-Protocol: bearer." + alice, "Sec-WebSocket-Protocol: bearer." + mallory),
                        "two in subprotocol"),
                Arguments.of(
                        "two cookies of the token's name",
                        List.of("Cookie: token=" + alice + "; theme=dark; token=" + mallory),
                        "two in cookie"),
                Arguments.of(
                        "two Cookie fields with the token's name",
                        List.of("Cookie: token=" + alice, "Cookie: token=" + mallory),
                        "two in cookie"),
                Arguments.of(
                        "a header token and a cookie token",
                        List.of("Authorization: Bearer " + alice, "Cookie: token=" + mallory),
                        "header and cookie"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("severalCredentials")
    void moreThanOneCredentialIsRefusedBeforeTheUpstream(String name, List<String> lines, String where)
            throws Exception {
        assertRefused(send("/every", lines), "every", "more than one credential (" + where + ")");
    }

    @Test
    void aRepeatedQueryParameterIsMoreThanOneCredential() throws Exception {
        final Sent sent =
                send("/every?access_token=" + token("alice") + "&room=1&access_token=" + token("mallory"), List.of());
        assertRefused(sent, "every", "more than one credential (two in query)");
    }

    @Test
    void aQueryTokenAndADifferentSubprotocolTokenAreMoreThanOneCredential() throws Exception {
        final Sent sent = send(
                "/every?access_token=" + token("mallory"), List.of("Sec-WebSocket-Protocol: bearer." + token("alice")));
        assertRefused(sent, "every", "more than one credential (subprotocol and query)");
    }

    @Test
    void theSameTokenInSeveralSourcesIsOneCredentialAndIsForwardedOnce() throws Exception {
        final String alice = token("alice");
        final Sent sent = send(
                "/every?access_token=" + alice,
                List.of(
                        "Sec-WebSocket-Protocol: bearer." + alice,
                        "Authorization: Bearer " + alice,
                        "Authorization: bearer " + alice,
                        "Cookie: token=" + alice));
        assertThat(sent.status()).isEqualTo(101);
        assertThat(sent.upstreamHeaders().get("authorization")).containsExactly("Bearer " + alice);
        assertThat(sent.upstreamHeaders().get("x-user")).containsExactly("alice");
    }

    // --- what the upstream gets as Authorization ---

    static Stream<Arguments> sources() throws Exception {
        final String token = token("alice");
        return Stream.of(
                Arguments.of(
                        "header, as the client spelled it",
                        "/every",
                        List.of("Authorization: BEARER   " + token),
                        token),
                Arguments.of("subprotocol", "/every", List.of("Sec-WebSocket-Protocol: bearer." + token), token),
                Arguments.of("query", "/every?access_token=" + token, List.of(), token),
                Arguments.of("cookie", "/every", List.of("Cookie: theme=dark; token=" + token), token),
                // The header is no source of this route: the client's field is never what goes upstream.
                Arguments.of(
                        "subprotocol, next to a forged Authorization the route does not read",
                        "/subprotocol-only",
                        List.of("Sec-WebSocket-Protocol: bearer." + token, "Authorization: Bearer forged.by.client"),
                        token));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sources")
    void theUpstreamGetsExactlyTheVerifiedTokenAsAuthorization(
            String name, String path, List<String> lines, String token) throws Exception {
        final Sent sent = send(path, lines);
        assertThat(sent.status()).isEqualTo(101);
        final Map<String, List<String>> seen = sent.upstreamHeaders();
        assertThat(seen.get("authorization")).containsExactly("Bearer " + token);
        assertThat(seen.toString())
                .as("the token reaches the upstream only as Authorization")
                .containsOnlyOnce(token.substring(token.lastIndexOf('.') + 1));
    }

    @Test
    void aRouteThatDoesNotForwardAuthorizationSendsNone() throws Exception {
        final Sent sent = send("/not-forwarded", List.of("Authorization: Bearer " + token("alice")));
        assertThat(sent.status()).isEqualTo(101);
        assertThat(sent.upstreamHeaders()).doesNotContainKey("authorization");
    }

    @Test
    void inMonitorModeAForgedHeaderIsLetThroughButNotForwarded() throws Exception {
        final Sent sent = send("/watch", List.of("Authorization: Bearer forged.by.client"));
        assertThat(sent.status()).isEqualTo(101);
        assertThat(sent.upstreamHeaders()).doesNotContainKey("authorization");
        assertThat(proxy.auditLines())
                .filteredOn(line -> sent.client().equals(line.get("client")))
                .singleElement()
                .satisfies(line -> assertThat(line)
                        .containsEntry("event", "monitored")
                        .containsEntry("reason", "token_invalid")
                        .containsEntry("route", "watch"));
    }

    @Test
    void inMonitorModeSeveralCredentialsAreAuditedAndNoneIsForwarded() throws Exception {
        final Sent sent = send(
                "/watch",
                List.of(
                        "Sec-WebSocket-Protocol: bearer." + token("alice"),
                        "Authorization: Bearer " + token("mallory")));
        assertThat(sent.status()).isEqualTo(101);
        assertThat(sent.upstreamHeaders()).doesNotContainKey("authorization");
        assertThat(proxy.auditLines())
                .filteredOn(line -> sent.client().equals(line.get("client")))
                .singleElement()
                .satisfies(line -> assertThat(line)
                        .containsEntry("event", "monitored")
                        .containsEntry("reason", "token_invalid")
                        .containsEntry("detail", "more than one credential (subprotocol and header)"));
    }

    // --- a subject where limits count by subject ---

    static Stream<Arguments> withoutSubject() throws Exception {
        final List<String> routes = List.of("messages-per-subject", "connections-per-subject");
        final List<Arguments> out = new ArrayList<>();
        for (String route : routes) {
            out.add(Arguments.of(route, "no sub", token(claims(null).build())));
            out.add(Arguments.of(route, "empty sub", token(claims("").build())));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("withoutSubject")
    void aTokenWithoutSubjectIsRefusedWhereLimitsCountBySubject(String route, String name, String token)
            throws Exception {
        assertRefused(
                send("/" + route, List.of("Authorization: Bearer " + token)),
                route,
                "no sub claim (expected: a subject, which the route's perSubject limits count by) (token from header)");
    }

    @Test
    void aTokenWithoutSubjectPassesWhereNothingCountsBySubject() throws Exception {
        final Sent sent = send(
                "/not-forwarded",
                List.of("Authorization: Bearer " + token(claims(null).build())));
        assertThat(sent.status()).isEqualTo(101);
        assertThat(sent.upstreamHeaders()).isNotNull();
    }

    // --- exp required, time claims in range ---

    @Test
    void aTokenWithoutExpIsRefused() throws Exception {
        final String token = token(claims("alice").expirationTime(null).build());
        assertRefused(
                send("/not-forwarded", List.of("Authorization: Bearer " + token)),
                "not-forwarded",
                "exp is missing (expected: an expiry; auth.jwt.allowNoExpiry: "
                        + "true accepts tokens without one) (token from header)");
    }

    @Test
    void aTokenWithoutExpPassesWhereTheRouteAllowsNoExpiry() throws Exception {
        final Sent sent = send(
                "/no-expiry",
                List.of("Authorization: Bearer "
                        + token(claims("alice").expirationTime(null).build())));
        assertThat(sent.status()).isEqualTo(101);
        assertThat(sent.upstreamHeaders()).isNotNull();
    }

    static Stream<Arguments> timeClaimsOutOfRange() {
        final long exp = Instant.now().plus(Duration.ofMinutes(5)).getEpochSecond();
        return Stream.of(
                // nimbus read this as 1969-12-31T23:59:59Z: not before the past, so valid now.
                Arguments.of("nbf", "{\"sub\":\"alice\",\"nbf\":1e30,\"exp\":" + exp + "}"),
                // ... and this exp as 1969 too: refused, but as expired, which it is not.
                Arguments.of("exp", "{\"sub\":\"alice\",\"exp\":1e30}"),
                Arguments.of("iat", "{\"sub\":\"alice\",\"iat\":-1,\"exp\":" + exp + "}"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("timeClaimsOutOfRange")
    void aTimeClaimOutsideTheRepresentableRangeIsRefusedNamingIt(String claim, String json) throws Exception {
        assertRefused(
                send("/not-forwarded", List.of("Authorization: Bearer " + rawToken(json))),
                "not-forwarded",
                claim + " is outside the representable range (expected: seconds since 1970, at most 253402300799,"
                        + " the end of year 9999) (token from header)");
    }
}
