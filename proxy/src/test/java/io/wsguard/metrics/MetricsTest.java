package io.wsguard.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.check.Reason;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class MetricsTest {

    private final Metrics metrics = new Metrics();

    @AfterEach
    void closeRegistry() {
        metrics.close();
    }

    private static final String UP = "ws://127.0.0.1:9000/chat";
    private static final Duration LIFETIME = Duration.ofSeconds(3);

    @Test
    void scrapePrintsSpecSeriesWithExactNamesAndLabels() {
        final RouteMetrics chat = metrics.route("chat");
        final Counts closed = new Counts(2, 0, 30, 0);
        chat.connectionOpened(closed);
        chat.connectionClosed(closed, LIFETIME);
        chat.connectionOpened(new Counts(1, 1, 5, 7));
        chat.connectionOpened(new Counts(0, 0, 0, 0));
        chat.handshake("accepted");
        chat.handshake("accepted");
        chat.handshake("upstream_unavailable");
        chat.blocked(Reason.PATTERN_DENIED, 4);
        metrics.route(null).handshake("no_route");
        metrics.route(null).blocked(Reason.NO_ROUTE, 1);

        final String scrape = metrics.scrape();
        final String labels = "route=\"chat\",upstream=\"" + UP + "\"}";
        assertThat(scrape.lines())
                .contains(
                        "wsguard_connections_active{" + labels + " 2.0",
                        "wsguard_messages_total{direction=\"inbound\"," + labels + " 3.0",
                        "wsguard_messages_total{direction=\"outbound\"," + labels + " 1.0",
                        "wsguard_bytes_total{direction=\"inbound\"," + labels + " 35.0",
                        "wsguard_bytes_total{direction=\"outbound\"," + labels + " 7.0",
                        "wsguard_handshakes_total{outcome=\"accepted\",route=\"chat\"} 2.0",
                        "wsguard_handshakes_total{outcome=\"upstream_unavailable\",route=\"chat\"} 1.0",
                        "wsguard_handshakes_total{outcome=\"no_route\",route=\"-\"} 1.0",
                        "wsguard_blocked_total{reason=\"pattern_denied\",route=\"chat\"} 4.0",
                        "wsguard_blocked_total{reason=\"no_route\",route=\"-\"} 1.0");
    }

    @Test
    void noRouteGetsOnlyHandshakeAndBlockedSeries() {
        metrics.route(null).handshakeRefused(Reason.NO_ROUTE);

        assertThat(metrics.route(null)).isSameAs(metrics.route(""));
        assertThat(metrics.scrape())
                .contains("wsguard_handshakes_total{outcome=\"no_route\",route=\"-\"} 1.0")
                .doesNotContain("wsguard_messages_total{direction=\"inbound\",route=\"-\"")
                .doesNotContain("wsguard_connections_active{route=\"-\"")
                .doesNotContain("wsguard_handshake_duration_seconds_count{outcome=\"accepted\",route=\"-\"}");
    }

    /** Counts move from open to closed connections without the totals ever going down or counting twice. */
    @Test
    void relayedTotalsAddClosedAndOpenConnections() {
        final RouteMetrics chat = metrics.route("chat");
        final Counts first = new Counts(4, 3, 400, 300);
        final Counts second = new Counts(1, 0, 10, 0);
        chat.connectionOpened(first);
        chat.connectionOpened(second);
        assertThat(chat.relayed(0)).isEqualTo(5);
        assertThat(chat.relayed(3)).isEqualTo(300);

        first.messagesIn = 6;
        chat.connectionClosed(first, LIFETIME);
        chat.connectionClosed(first, LIFETIME);
        first.messagesIn = 100; // no longer read
        second.messagesIn = 2;

        assertThat(chat.relayed(0)).isEqualTo(8);
        assertThat(chat.relayed(1)).isEqualTo(3);
        assertThat(chat.relayed(2)).isEqualTo(410);
        assertThat(chat.activeConnections()).isEqualTo(1);
        assertThat(metrics.scrape())
                .contains("wsguard_messages_total{direction=\"inbound\",route=\"chat\",upstream=\"" + UP + "\"} 8.0")
                .contains("wsguard_connection_lifetime_seconds_count{route=\"chat\",upstream=\"" + UP + "\"} 1")
                .contains("wsguard_connection_lifetime_seconds_bucket{route=\"chat\",upstream=\"" + UP
                        + "\",le=\"1.0\"} 0")
                .contains("wsguard_connection_lifetime_seconds_bucket{route=\"chat\",upstream=\"" + UP
                        + "\",le=\"10.0\"} 1");
    }

    /** Each upstream target of a route has its own series; the route's totals add them up. */
    @Test
    void countsEachUpstreamTargetApart() {
        final RouteMetrics chat = metrics.route("chat");
        final Counts a = new Counts(2, 0, 20, 0);
        final Counts b = new Counts(5, 0, 50, 0);
        b.upstream = "wss://10.0.0.2:443/chat";
        chat.connectionOpened(a);
        chat.connectionOpened(b);

        assertThat(chat.relayed(0)).isEqualTo(7);
        assertThat(metrics.scrape().lines())
                .contains(
                        "wsguard_messages_total{direction=\"inbound\",route=\"chat\",upstream=\"" + UP + "\"} 2.0",
                        "wsguard_messages_total{direction=\"inbound\",route=\"chat\",upstream=\"" + b.upstream
                                + "\"} 5.0",
                        "wsguard_connections_active{route=\"chat\",upstream=\"" + b.upstream + "\"} 1.0");
    }

    /**
     * The message-size histogram adds each connection's own bucket counts, open and closed, and
     * prints them cumulative with the route's message and byte totals as count and sum.
     */
    @Test
    void messageSizeHistogramAddsConnectionsBuckets() {
        final RouteMetrics chat = metrics.route("chat");
        final Counts closed = new Counts(3, 0, 64 + 65 + 2_000, 0);
        closed.sizesIn[MessageSizes.bucket(64)]++;
        closed.sizesIn[MessageSizes.bucket(65)]++;
        closed.sizesIn[MessageSizes.bucket(2_000)]++;
        chat.connectionOpened(closed);
        chat.connectionClosed(closed, LIFETIME);
        final Counts open = new Counts(1, 1, 1, 20_000_000);
        open.sizesIn[MessageSizes.bucket(1)]++;
        open.sizesOut[MessageSizes.bucket(20_000_000)]++;
        chat.connectionOpened(open);

        final String in =
                "wsguard_message_size_bytes_bucket{direction=\"inbound\",route=\"chat\",upstream=\"" + UP + "\",le=";
        final String out = in.replace("inbound", "outbound");
        assertThat(metrics.scrape().lines())
                .contains(
                        in + "\"64.0\"} 2",
                        in + "\"256.0\"} 3",
                        in + "\"1024.0\"} 3",
                        in + "\"4096.0\"} 4",
                        in + "\"+Inf\"} 4",
                        out + "\"1.6777216E7\"} 0",
                        out + "\"+Inf\"} 1",
                        "wsguard_message_size_bytes_count{direction=\"inbound\",route=\"chat\",upstream=\"" + UP
                                + "\"} 4",
                        "wsguard_message_size_bytes_sum{direction=\"inbound\",route=\"chat\",upstream=\"" + UP
                                + "\"} 2130.0");
    }

    @Test
    void bucketsOfMessageSizesAreTheFirstBoundAtOrAboveTheSize() {
        assertThat(MessageSizes.bucket(0)).isZero();
        assertThat(MessageSizes.bucket(64)).isZero();
        assertThat(MessageSizes.bucket(65)).isEqualTo(1);
        assertThat(MessageSizes.bucket(256)).isEqualTo(1);
        assertThat(MessageSizes.bucket(257)).isEqualTo(2);
        assertThat(MessageSizes.bucket(16 * 1024 * 1024)).isEqualTo(9);
        assertThat(MessageSizes.bucket(16 * 1024 * 1024 + 1)).isEqualTo(10);
        assertThat(MessageSizes.bucket(Long.MAX_VALUE)).isEqualTo(10);
        for (long size = 0; size < 70_000; size++) {
            final int bucket = MessageSizes.bucket(size);
            assertThat(size).as("size %d in bucket %d", size, bucket).isLessThanOrEqualTo((long)
                    MessageSizes.UPPER_BOUNDS[bucket]);
            if (bucket > 0) {
                assertThat(size).isGreaterThan((long) MessageSizes.UPPER_BOUNDS[bucket - 1]);
            }
        }
    }

    @Test
    void handshakeAndConnectDurationsHaveFixedBuckets() {
        final RouteMetrics chat = metrics.route("chat");
        chat.handshakeTook(true, 3_000_000);
        chat.handshakeTook(false, 30_000_000);
        chat.upstreamConnected(UP, 700_000);

        final String scrape = metrics.scrape();
        assertThat(scrape.lines())
                .contains(
                        "wsguard_handshake_duration_seconds_bucket{outcome=\"accepted\",route=\"chat\",le=\"0.0025\"}"
                                + " 0",
                        "wsguard_handshake_duration_seconds_bucket{outcome=\"accepted\",route=\"chat\",le=\"0.005\"} 1",
                        "wsguard_handshake_duration_seconds_bucket{outcome=\"refused\",route=\"chat\",le=\"0.05\"} 1",
                        "wsguard_upstream_connect_duration_seconds_bucket{route=\"chat\",upstream=\"" + UP
                                + "\",le=\"0.001\"} 1");
        // Bounded: the SLO buckets and +Inf, not Micrometer's percentile histogram of ~70 buckets.
        assertThat(scrape.lines()
                        .filter(l -> l.startsWith(
                                "wsguard_handshake_duration_seconds_bucket{outcome=\"accepted\",route=\"chat\""))
                        .count())
                .isEqualTo(RouteMetrics.HANDSHAKE_BUCKETS.length + 1);
    }

    /** A connection's counts as {@link Traffic}: settable, as a relay would grow them. */
    private static final class Counts implements Traffic {
        volatile long messagesIn;
        volatile long messagesOut;
        volatile long bytesIn;
        volatile long bytesOut;
        final long[] sizesIn = new long[MessageSizes.BUCKETS];
        final long[] sizesOut = new long[MessageSizes.BUCKETS];
        String upstream = UP;

        Counts(long messagesIn, long messagesOut, long bytesIn, long bytesOut) {
            this.messagesIn = messagesIn;
            this.messagesOut = messagesOut;
            this.bytesIn = bytesIn;
            this.bytesOut = bytesOut;
        }

        @Override
        public long messagesIn() {
            return messagesIn;
        }

        @Override
        public long messagesOut() {
            return messagesOut;
        }

        @Override
        public long bytesIn() {
            return bytesIn;
        }

        @Override
        public long bytesOut() {
            return bytesOut;
        }

        @Override
        public long messageSizes(boolean inbound, int bucket) {
            return (inbound ? sizesIn : sizesOut)[bucket];
        }

        @Override
        public String relayPath() {
            return "pump";
        }

        @Override
        public String upstream() {
            return upstream;
        }
    }

    @Test
    void routeMetricsAreCachedPerRoute() {
        assertThat(metrics.route("chat")).isSameAs(metrics.route("chat"));
        assertThat(metrics.route("chat")).isNotSameAs(metrics.route("feed"));
    }

    @Test
    void refusesUnknownHandshakeOutcomeSoLabelsStayBounded() {
        assertThatThrownBy(() -> metrics.route("chat").handshake("<script>"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("expected: accepted or a reason code");
    }

    @Test
    void scrapeIncludesJvmAndProcessSeries() {
        assertThat(metrics.scrape())
                .contains("jvm_memory_used_bytes{")
                .contains("jvm_threads_live_threads ")
                .contains("process_cpu_usage ")
                .contains("process_uptime_seconds ");
    }

    @Test
    void residentMemoryIsReportedOnLinux() {
        Assumptions.assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "Linux only");
        assertThat(ProcessMemory.residentBytes()).isPositive();
        assertThat(metrics.scrape()).contains("process_resident_memory_bytes ");
    }
}
