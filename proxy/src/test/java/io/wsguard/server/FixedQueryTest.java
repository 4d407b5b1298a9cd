package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawRequest;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.UpstreamServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A target's fixed query parameters win ({@code ws://up/echo?tenant=acme&role=guest}): a client
 * parameter that any framework could read as one of them is dropped before the query goes upstream,
 * counted in {@code wsguard_modified_total{reason="query_override"}} and audited as
 * {@code event: modified}; other parameters go on as sent. Checked from outside: the query the
 * upstream received, exactly, the audit line and the metric. Each case comes from an address of its
 * own (X-Forwarded-For from the trusted 127.0.0.1), so that each has its own audit line.
 */
@Timeout(60)
class FixedQueryTest {

    static final String SECRET = "a fixed-query test secret of at least thirty-two bytes";

    @TempDir
    static Path dir;

    static UpstreamServer upstream;
    static RunningProxy proxy;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(dir)
                .routes("""
                - name: fixed
                  match: { path: /fixed }
                  upstream: { targets: ["%1$s?tenant=acme&role=guest&display+name=Acme"] }
                  auth: none
                - name: free
                  match: { path: /free }
                  upstream: { targets: ["%1$s"] }
                  auth: none
                - name: token
                  match: { path: /token }
                  upstream: { targets: ["%1$s?tenant=acme"] }
                  auth:
                    jwt: { algorithms: [HS256], secret: "%2$s", tokenSources: ["query:access_token"] }
                - name: watch
                  match: { path: /watch }
                  mode: monitor
                  upstream: { targets: ["%1$s?role=guest"] }
                  auth: none
                """.formatted(upstream.uri("/echo"), SECRET))
                .extra("proxy: { trustedProxies: [127.0.0.1/32] }\n"));
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    /** Upgrades {@code target} from {@code clientIp} and returns the path and query the upstream got, or null. */
    private static String upgrade(String target, String clientIp) throws Exception {
        final int before = upstream.upgradeUris().size();
        final List<String> lines = RawRequest.upgradeHeaders();
        lines.addAll(List.of(
                "Host: 127.0.0.1:" + proxy.port(),
                "Sec-WebSocket-Key: " + RawRequest.KEY,
                "X-Forwarded-For: " + clientIp));
        final RawRequest answer = RawRequest.get(proxy.port(), target, lines);
        assertThat(answer.status()).as(target).isEqualTo(101);
        assertThat(upstream.upgradeUris()).hasSize(before + 1);
        return upstream.upgradeUris().get(before);
    }

    private static List<Map<String, Object>> auditOf(String clientIp) throws Exception {
        return proxy.auditLines().stream()
                .filter(line -> clientIp.equals(line.get("client")))
                .toList();
    }

    /** The value of one counter series in the scrape, 0 when it is not there yet. */
    private static double counter(String series) {
        return proxy.server()
                .metrics()
                .scrape()
                .lines()
                .filter(line -> line.startsWith(series + " "))
                .mapToDouble(line ->
                        Double.parseDouble(line.substring(series.length() + 1).strip()))
                .findFirst()
                .orElse(0);
    }

    private static final AtomicInteger CASES = new AtomicInteger();
    private static final String MODIFIED = "wsguard_modified_total{reason=\"query_override\",route=\"fixed\"}";

    @ParameterizedTest(name = "?{0}")
    @CsvSource(
            delimiter = '|',
            value = {
                // client query                          | dropped | what the upstream gets after the target's own query
                "role=admin                              | 1 | ''",
                "x=1&role=admin&y=2                      | 1 | &x=1&y=2",
                "rol%65=admin&x=1                        | 1 | &x=1",
                "rol%2565=admin&x=1                      | 1 | &x=1",
                "ROLE=admin&x=1                          | 1 | &x=1",
                "R%4FLE=admin&x=1                        | 1 | &x=1",
                "role[]=admin&x=1                        | 1 | &x=1",
                "role%5B%5D=admin&x=1                    | 1 | &x=1",
                "role[0]=admin&x=1                       | 1 | &x=1",
                "role.x=admin&x=1                        | 1 | &x=1",
                "role&x=1                                | 1 | &x=1",
                "role=&x=1                               | 1 | &x=1",
                "+role+=admin&x=1                        | 1 | &x=1",
                "role%00junk=admin&x=1                   | 1 | &x=1",
                "role=a&role=b&x=1&ROLE=c                | 3 | &x=1",
                "x=1;role=admin&y=2                      | 1 | &y=2",
                "tenant=evil&x=1                         | 1 | &x=1",
                "display+name=Evil&x=1                   | 1 | &x=1",
                "display%20name=Evil&x=1                 | 1 | &x=1",
                "display.name=Evil&x=1                   | 1 | &x=1",
                "display_name=Evil&x=1                   | 1 | &x=1",
                "roles=admin&x=1&my_role=a&rolex=b       | 0 | &roles=admin&x=1&my_role=a&rolex=b",
                "x=role&y=%72ole                         | 0 | &x=role&y=%72ole",
            })
    void clientParametersNamingAFixedOneAreDroppedCountedAndAudited(String query, int dropped, String rest)
            throws Exception {
        final String clientIp = "198.18.4." + CASES.incrementAndGet();
        final double before = counter(MODIFIED);

        final String received = upgrade("/fixed?" + query, clientIp);

        assertThat(received).isEqualTo("/echo?tenant=acme&role=guest&display+name=Acme" + rest);
        if (dropped == 0) {
            assertThat(counter(MODIFIED)).isEqualTo(before);
            assertThat(auditOf(clientIp)).isEmpty();
            return;
        }
        assertThat(counter(MODIFIED)).isEqualTo(before + 1);
        assertThat(auditOf(clientIp)).singleElement().satisfies(line -> assertThat(line)
                .containsEntry("event", "modified")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", "query_override")
                .containsEntry("route", "fixed")
                .containsEntry("action", "modify")
                .containsEntry("count", 1)
                .containsEntry(
                        "detail",
                        "dropped " + dropped + " client query parameter" + (dropped == 1 ? "" : "s")
                                + " naming one the target fixes"));
    }

    @Test
    void aRouteWithoutFixedParametersForwardsTheQueryAsSent() throws Exception {
        assertThat(upgrade("/free?role=admin&ROLE=x&a=%41+b&c", "198.18.5.1"))
                .isEqualTo("/echo?role=admin&ROLE=x&a=%41+b&c");
        assertThat(auditOf("198.18.5.1")).isEmpty();
    }

    @Test
    void aQueryTokenInAnyOtherSpellingNeverReachesTheUpstreamNorDoesAFixedParameter() throws Exception {
        final Instant now = Instant.now();
        final SignedJWT jwt = new SignedJWT(
                new JWSHeader.Builder(JWSAlgorithm.HS256).build(),
                new JWTClaimsSet.Builder()
                        .subject("alice")
                        .issueTime(Date.from(now))
                        .expirationTime(Date.from(now.plusSeconds(300)))
                        .build());
        jwt.sign(new MACSigner(SECRET.getBytes(StandardCharsets.UTF_8)));
        final String token = jwt.serialize();

        // access_token is the one verified; the others are spellings an upstream may read as the same
        // name (ASP.NET ignores case, PHP and qs read access_token[] as access_token). A second
        // access_token itself would be a second credential, refused whole (CredentialTest).
        final String received = upgrade(
                "/token?access_token=" + token + "&ACCESS_TOKEN=forged&access_token[]=forged" + "&x=1&tenant=evil",
                "198.18.5.2");

        assertThat(received).isEqualTo("/echo?tenant=acme&x=1");
        assertThat(auditOf("198.18.5.2")).singleElement().satisfies(line -> assertThat(line)
                .containsEntry("event", "modified")
                .containsEntry("reason", "query_override")
                .containsEntry("route", "token")
                .containsEntry("sub", "alice")
                .containsEntry("detail", "dropped 1 client query parameter naming one the target fixes"));
    }

    @Test
    void monitorModeAuditsTheOverrideAndForwardsTheQueryAsSent() throws Exception {
        final String series = "wsguard_blocked_total{reason=\"query_override\",route=\"watch\"}";
        final double before = counter(series);

        assertThat(upgrade("/watch?role=admin", "198.18.5.3")).isEqualTo("/echo?role=guest&role=admin");

        assertThat(counter(series)).isEqualTo(before + 1);
        assertThat(auditOf("198.18.5.3")).singleElement().satisfies(line -> assertThat(line)
                .containsEntry("event", "monitored")
                .containsEntry("stage", "handshake")
                .containsEntry("reason", "query_override")
                .containsEntry("route", "watch")
                .containsEntry("action", "none")
                .containsEntry("detail", "dropped 1 client query parameter naming one the target fixes"));
    }
}
