package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.policy.PolicyException;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawUpgrade;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.SchemaChecked;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code proxy.pathMatching}: by default a route matches its path whatever the case and with or
 * without a trailing slash, as Express and most upstream frameworks resolve paths, so that
 * {@code /Admin} and {@code /admin/} meet the checks of the {@code /admin} route rather than a laxer
 * one's; the path still goes upstream as the client wrote it. {@code exact} keeps the comparison as
 * written. Real proxy, raw upgrades.
 */
@Timeout(60)
class PathMatchingTest {

    private static final String ROUTES = """
            - name: admin
              match: { path: /admin }
              upstream: { targets: [%1$s/admin-target] }
              auth: { jwt: { algorithms: [HS256], secret: 0123456789abcdef0123456789abcdef } }
            - name: area
              match: { pathPrefix: /Admin-Area/ }
              upstream: { targets: [%1$s/area/] }
              auth: { jwt: { algorithms: [HS256], secret: 0123456789abcdef0123456789abcdef } }
            - name: files
              match: { pathPrefix: /files/ }
              upstream: { targets: [%1$s/store/] }
              auth: none
            - name: public
              match: { pathPrefix: / }
              upstream: { targets: [%1$s/lax] }
              auth: none
            """;

    @TempDir
    static Path dir;

    private static UpstreamServer upstream;
    private static RunningProxy proxy;
    private static RunningProxy exact;

    @BeforeAll
    static void start() throws Exception {
        upstream = new UpstreamServer();
        proxy = RunningProxy.start(PolicyText.in(Files.createDirectories(dir.resolve("normalized")))
                .routes(ROUTES.formatted(upstream.uri(""))));
        exact = RunningProxy.start(PolicyText.in(Files.createDirectories(dir.resolve("exact")))
                .routes(ROUTES.formatted(upstream.uri("")))
                .extra("proxy: { pathMatching: exact }\n"));
    }

    @AfterAll
    static void stop() throws Exception {
        proxy.close();
        exact.close();
        upstream.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"/Admin", "/ADMIN", "/admin/", "/Admin/", "/%41dmin", "/%41DMIN/", "/adm%C4%B0n"})
    void anotherCaseOrATrailingSlashMeetsTheChecksOfTheRouteForThePath(String path) throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused = RawUpgrade.send(proxy.port(), path, Map.of())) {
            assertThat(refused.status()).isEqualTo(401);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("event", "blocked")
                .containsEntry("reason", "token_missing")
                .containsEntry("route", "admin")
                .containsEntry("status", 401));
    }

    @ParameterizedTest
    @ValueSource(strings = {"/admin-area/x", "/ADMIN-AREA/X", "/admin-area", "/Admin-Area"})
    void aPrefixRouteMatchesWhateverTheCaseAndWithoutItsTrailingSlash(String path) throws Exception {
        final int before = upstream.upgrades();
        try (RawUpgrade refused = RawUpgrade.send(proxy.port(), path, Map.of())) {
            assertThat(refused.status()).isEqualTo(401);
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
        assertThat(proxy.auditLines()).anySatisfy(line -> assertThat(line)
                .containsEntry("reason", "token_missing")
                .containsEntry("route", "area")
                .containsEntry("status", 401));
    }

    @Test
    void thePathGoesUpstreamAsTheClientWroteIt() throws Exception {
        try (RawUpgrade upgraded = RawUpgrade.send(proxy.port(), "/FILES/Report%20Q1.TXT", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/store/Report%20Q1.TXT");
    }

    @Test
    void anEmptySegmentNeverReachesTheRouteTable() throws Exception {
        // Jetty refuses an ambiguous empty segment before routing: /admin//x cannot pass for /admin/x.
        final int before = upstream.upgrades();
        for (String path : new String[] {"/admin//", "/files//x", "//admin"}) {
            try (RawUpgrade refused = RawUpgrade.send(proxy.port(), path, Map.of())) {
                assertThat(refused.status()).as(path).isEqualTo(400);
            }
        }
        assertThat(upstream.upgrades()).isEqualTo(before);
    }

    @Test
    void exactPathMatchingComparesAsWritten() throws Exception {
        try (RawUpgrade upgraded = RawUpgrade.send(exact.port(), "/Admin", Map.of())) {
            assertThat(upgraded.status()).isEqualTo(101);
        }
        assertThat(upstream.upgradeUris()).last().isEqualTo("/lax/Admin");
        try (RawUpgrade refused = RawUpgrade.send(exact.port(), "/admin", Map.of())) {
            assertThat(refused.status()).isEqualTo(401);
        }
    }

    @Test
    void routesWhosePathsDifferOnlyInCaseOrATrailingSlashAreALocatedProblem() throws Exception {
        final String twins = """
                version: 1
                listeners: [{ port: 0 }]
                routes:
                  - name: admin
                    match: { path: /admin }
                    upstream: { targets: [ws://127.0.0.1:9000/a] }
                    auth: none
                  - name: admin-too
                    match: { path: /Admin/ }
                    upstream: { targets: [ws://127.0.0.1:9000/b] }
                    auth: none
                """;
        final Path file = Files.writeString(dir.resolve("twins.yaml"), twins);
        assertThatThrownBy(() -> PolicyCheck.compile(SchemaChecked.load(file, Map.of())))
                .isInstanceOf(PolicyException.class)
                .hasMessage(file
                        + ":9:20: routes[1].match.path: '/Admin/' is the "
                        + "same path as routes[0]'s '/admin' when case and"
                        + " a trailing slash are ignored (proxy.pathMatching: "
                        + "normalized), so one of the two routes could never be"
                        + " reached (expected: one route for the path, or "
                        + "proxy.pathMatching: exact for an upstream that tells them apart)");

        // Where the upstream tells them apart, say so; and routes on different hosts never meet.
        PolicyCheck.compile(
                SchemaChecked.load(Files.writeString(file, twins + "proxy: { pathMatching: exact }\n"), Map.of()));
        PolicyCheck.compile(SchemaChecked.load(
                Files.writeString(file, twins.replace("{ path: /Admin/ }", "{ host: b.example.com, path: /Admin/ }")),
                Map.of()));
    }
}
