package io.wsguard.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.check.Reason;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class MetricsTest {

    private final Metrics metrics = new Metrics();

    @AfterEach
    void closeRegistry() {
        metrics.close();
    }

    @Test
    void scrapePrintsSpecSeriesWithExactNamesAndLabels() {
        final RouteMetrics chat = metrics.route("chat");
        chat.connectionOpened();
        chat.connectionOpened();
        chat.connectionOpened();
        chat.connectionClosed();
        final Counts closed = new Counts(2, 0, 30, 0);
        chat.track(closed);
        chat.untrack(closed);
        chat.track(new Counts(1, 1, 5, 7));
        chat.handshake("accepted");
        chat.handshake("accepted");
        chat.handshake("upstream_unavailable");
        chat.blocked(Reason.PATTERN_DENIED, 4);
        metrics.route(null).handshake("no_route");
        metrics.route(null).blocked(Reason.NO_ROUTE, 1);

        final String scrape = metrics.scrape();
        assertThat(scrape.lines())
                .contains(
                        "wsguard_connections_active{route=\"chat\"} 2.0",
                        "wsguard_messages_total{direction=\"inbound\",route=\"chat\"} 3.0",
                        "wsguard_messages_total{direction=\"outbound\",route=\"chat\"} 1.0",
                        "wsguard_bytes_total{direction=\"inbound\",route=\"chat\"} 35.0",
                        "wsguard_bytes_total{direction=\"outbound\",route=\"chat\"} 7.0",
                        "wsguard_handshakes_total{outcome=\"accepted\",route=\"chat\"} 2.0",
                        "wsguard_handshakes_total{outcome=\"upstream_unavailable\",route=\"chat\"} 1.0",
                        "wsguard_handshakes_total{outcome=\"no_route\",route=\"-\"} 1.0",
                        "wsguard_blocked_total{reason=\"pattern_denied\",route=\"chat\"} 4.0",
                        "wsguard_blocked_total{reason=\"no_route\",route=\"-\"} 1.0");
    }

    @Test
    void noRouteGetsOnlyHandshakeAndBlockedSeries() {
        metrics.route(null).handshakeRefused(Reason.NO_ROUTE);
        metrics.route("").track(new Counts(1, 0, 3, 0));

        assertThat(metrics.route(null)).isSameAs(metrics.route(""));
        assertThat(metrics.scrape())
                .contains("wsguard_handshakes_total{outcome=\"no_route\",route=\"-\"} 1.0")
                .doesNotContain("wsguard_messages_total{direction=\"inbound\",route=\"-\"}")
                .doesNotContain("wsguard_connections_active{route=\"-\"}");
    }

    /** Counts move from open to closed connections without the totals ever going down or counting twice. */
    @Test
    void relayedTotalsAddClosedAndOpenConnections() {
        final RouteMetrics chat = metrics.route("chat");
        final Counts first = new Counts(4, 3, 400, 300);
        final Counts second = new Counts(1, 0, 10, 0);
        chat.track(first);
        chat.track(second);
        assertThat(chat.relayed(0)).isEqualTo(5);
        assertThat(chat.relayed(3)).isEqualTo(300);

        first.messagesIn = 6;
        chat.untrack(first);
        chat.untrack(first);
        first.messagesIn = 100; // no longer read
        second.messagesIn = 2;

        assertThat(chat.relayed(0)).isEqualTo(8);
        assertThat(chat.relayed(1)).isEqualTo(3);
        assertThat(chat.relayed(2)).isEqualTo(410);
        assertThat(metrics.scrape()).contains("wsguard_messages_total{direction=\"inbound\",route=\"chat\"} 8.0");
    }

    /** A connection's counts as {@link Traffic}: settable, as a relay would grow them. */
    private static final class Counts implements Traffic {
        volatile long messagesIn;
        volatile long messagesOut;
        volatile long bytesIn;
        volatile long bytesOut;

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
