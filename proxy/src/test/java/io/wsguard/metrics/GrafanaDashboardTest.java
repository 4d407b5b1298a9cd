package io.wsguard.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.CloseAfterEach;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RedisServer;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestCerts;
import io.wsguard.testing.TestCerts.KeyFormat;
import io.wsguard.testing.TestCerts.KeyType;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jetty.websocket.api.exceptions.UpgradeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code deploy/grafana/wsguard.json} queries only series that a running proxy serves: every metric
 * name in every PromQL expression (panels and template variables) is on {@code /metrics} of a proxy
 * that has relayed messages, refused a handshake, served a TLS certificate and fallen back from an
 * unreachable Redis, so that counters and histograms exist.
 */
@Timeout(90)
class GrafanaDashboardTest {

    static final Path DASHBOARD = Path.of("../deploy/grafana/wsguard.json");

    /**
     * PromQL's functions and aggregation operators: an identifier followed by {@code (}, which must be
     * one of these (a misspelt function fails the test rather than passing as a metric).
     */
    static final Set<String> FUNCTIONS = Set.of(
            "abs",
            "absent",
            "absent_over_time",
            "avg",
            "avg_over_time",
            "bottomk",
            "ceil",
            "changes",
            "clamp",
            "clamp_max",
            "clamp_min",
            "count",
            "count_over_time",
            "count_values",
            "day_of_month",
            "day_of_week",
            "days_in_month",
            "delta",
            "deriv",
            "exp",
            "floor",
            "group",
            "histogram_quantile",
            "holt_winters",
            "hour",
            "idelta",
            "increase",
            "irate",
            "label_join",
            "label_replace",
            "label_values",
            "last_over_time",
            "ln",
            "log2",
            "log10",
            "max",
            "max_over_time",
            "min",
            "min_over_time",
            "minute",
            "month",
            "predict_linear",
            "quantile",
            "quantile_over_time",
            "rate",
            "resets",
            "round",
            "scalar",
            "sgn",
            "sort",
            "sort_desc",
            "sqrt",
            "stddev",
            "stddev_over_time",
            "stdvar",
            "stdvar_over_time",
            "sum",
            "sum_over_time",
            "time",
            "timestamp",
            "topk",
            "vector",
            "year");

    /** Keywords that are not metrics: binary operators, modifiers. */
    static final Set<String> KEYWORDS = Set.of(
            "and",
            "or",
            "unless",
            "bool",
            "offset",
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
            "inf",
            "nan");

    @TempDir
    Path dir;

    @RegisterExtension
    final CloseAfterEach closing = new CloseAfterEach();

    @Test
    void everyMetricTheDashboardQueriesIsOnMetricsOfARunningProxy() throws Exception {
        final List<String> expressions =
                expressions(JsonMapper.builder().build().readTree(Files.readString(DASHBOARD)));
        final Set<String> queried = new TreeSet<>();
        for (String expression : expressions) {
            queried.addAll(metricNames(expression));
        }
        // The extraction found the dashboard's series, histograms by their _bucket series.
        assertThat(queried)
                .contains(
                        "wsguard_connections_active",
                        "wsguard_handshakes_total",
                        "wsguard_blocked_total",
                        "wsguard_messages_total",
                        "wsguard_bytes_total",
                        "wsguard_handshake_duration_seconds_bucket",
                        "wsguard_upstream_connect_duration_seconds_bucket",
                        "wsguard_connection_lifetime_seconds_bucket",
                        "wsguard_message_size_bytes_bucket",
                        "wsguard_tls_certificate_expiry_timestamp_seconds",
                        "wsguard_ratelimit_store_fallbacks_total",
                        "wsguard_cluster_instances",
                        "wsguard_build_info",
                        "wsguard_audit_dropped_total");

        final Set<String> served = servedNames(scrapeAfterTraffic());
        final Set<String> missing = new TreeSet<>();
        for (String name : queried) {
            if (!served.contains(name)) {
                missing.add(name);
            }
        }
        assertThat(missing)
                .as("metrics the dashboard queries that /metrics does not have")
                .isEmpty();
    }

    /** The extraction itself: names, not functions, labels, ranges, strings or Grafana variables. */
    @Test
    void extractsMetricNamesFromPromQl() {
        assertThat(metricNames(
                        "histogram_quantile(0.95, sum by (le, upstream) (rate(wsguard_x_bucket{route=~\"$route\","
                                + "instance=~\"a|b\"}[$__rate_interval])))"))
                .containsExactly("wsguard_x_bucket");
        assertThat(metricNames("min by (listener) ((wsguard_expiry - time()) / 86400) > bool 7 and on (instance) up"))
                .containsExactly("up", "wsguard_expiry");
        assertThat(metricNames("label_values(wsguard_handshakes_total{instance=~\"$instance\"}, route)"))
                .containsExactly("wsguard_handshakes_total");
        assertThat(metricNames("count by (version) (wsguard_build_info) offset 5m"))
                .containsExactly("wsguard_build_info");
        assertThatThrownBy(() -> metricNames("rat(wsguard_x[5m])"))
                .hasMessageContaining("'rat' is not a PromQL function");
    }

    /** Every {@code expr} of every panel (rows' panels too) and every template variable's query. */
    static List<String> expressions(JsonNode dashboard) {
        final List<String> expressions = new ArrayList<>();
        collectPanels(dashboard.path("panels"), expressions);
        for (JsonNode variable : dashboard.path("templating").path("list")) {
            if (!"query".equals(variable.path("type").asString())) {
                continue;
            }
            final JsonNode query = variable.path("query");
            expressions.add(
                    query.isString() ? query.asString() : query.path("query").asString());
        }
        assertThat(expressions).as("expressions in %s", DASHBOARD).isNotEmpty().doesNotContain("");
        return expressions;
    }

    private static void collectPanels(JsonNode panels, List<String> into) {
        for (JsonNode panel : panels) {
            for (JsonNode target : panel.path("targets")) {
                into.add(target.path("expr").asString());
            }
            collectPanels(panel.path("panels"), into);
        }
    }

    /**
     * The metric names of one PromQL expression. Strings, label matchers ({@code {...}}), ranges
     * ({@code [...]}), grouping label lists ({@code by (...)}, {@code on (...)}, ...), durations and
     * numbers are dropped first; then an identifier followed by {@code (} is a function (which must be
     * known), a keyword is a keyword, and every other identifier is a metric. {@code label_values(m, l)}
     * (a Grafana template query) keeps only {@code m}.
     */
    static Set<String> metricNames(String expression) {
        String rest = expression.replaceAll("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'", "\"\"");
        rest = rest.replaceAll("\\{[^}]*}", " ").replaceAll("\\[[^]]*]", " ");
        rest = rest.replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", " ");
        rest = rest.replaceAll("label_values\\(([^,)]*),[^)]*\\)", "label_values($1)");
        rest = rest.replaceAll("\\boffset\\s+\\S+", " ");
        rest = rest.replaceAll("\\$\\{?\\w+}?", " ");
        final Set<String> names = new TreeSet<>();
        final Matcher identifier = Pattern.compile("(?<![\\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\\s*\\()?")
                .matcher(rest);
        while (identifier.find()) {
            final String name = identifier.group(1);
            if (identifier.group(2) != null) {
                if (!FUNCTIONS.contains(name)) {
                    throw new IllegalArgumentException("'" + name + "' is not a PromQL function, in: " + expression);
                }
            } else if (!KEYWORDS.contains(name.toLowerCase(Locale.ROOT))) {
                names.add(name);
            }
        }
        return names;
    }

    /** The sample names of a scrape, and each family's name from its {@code # TYPE} line. */
    static Set<String> servedNames(String scrape) {
        final Set<String> names = new TreeSet<>();
        for (String line : scrape.lines().toList()) {
            if (line.startsWith("# TYPE ")) {
                final String family = line.substring("# TYPE ".length());
                names.add(family.substring(0, family.indexOf(' ')));
            } else if (!line.isEmpty() && !line.startsWith("#")) {
                final int end = line.indexOf('{') >= 0 ? line.indexOf('{') : line.indexOf(' ');
                names.add(line.substring(0, end));
            }
        }
        return names;
    }

    /**
     * {@code /metrics} of a proxy with a TLS listener and a route whose handshake rate is shared
     * through a Redis that is not there (nothing listens on its port): one connection relays
     * messages both ways and closes, one handshake is refused (no route), and the rate check falls
     * back from the unreachable store.
     */
    private String scrapeAfterTraffic() throws Exception {
        final TestCerts.Issued certificate = TestCerts.authority(dir, "ca")
                .issue(dir, "proxy", List.of("localhost", "127.0.0.1"), KeyType.EC, KeyFormat.PKCS8);
        final RedisServer absent = RedisServer.onFreePort(dir); // never started: Redis is unreachable
        final UpstreamServer upstream = closing.add(new UpstreamServer());
        final RunningProxy proxy = closing.add(RunningProxy.start(PolicyText.in(dir)
                .tls(certificate.certificate(), certificate.privateKey())
                .extra("admin: { host: 127.0.0.1, port: 0 }\n"
                        + "rateLimitStore: { type: redis, redis: { uri: '" + absent.uri()
                        + "', onUnavailable: local, timeout: 200ms } }\n")
                .routes("""
                        - name: echo
                          match: { path: /echo }
                          upstream: { targets: [%s] }
                          auth: none
                          limits: { handshakes: { perIp: { rate: 100/s, burst: 100 } } }
                        """.formatted(upstream.uri("/echo")))));
        final TestClient client = closing.add(new TestClient());
        final TestClient.Recorder ws = client.connect(URI.create("wss://127.0.0.1:" + proxy.port() + "/echo"));
        ws.send("hello");
        assertThat(ws.next()).isEqualTo("hello");
        ws.session.close();
        assertThat(ws.awaitClose()).isTrue();
        assertThatThrownBy(() -> client.connect(URI.create("wss://127.0.0.1:" + proxy.port() + "/nowhere")))
                .isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(UpgradeException.class);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(ProxyMetricsTest.metrics(proxy))
                .contains("wsguard_connection_lifetime_seconds_count{")
                .contains("wsguard_ratelimit_store_fallbacks_total{")
                .contains("wsguard_handshakes_total{outcome=\"no_route\""));
        return ProxyMetricsTest.metrics(proxy);
    }
}
