package io.wsguard.metrics;

import io.prometheus.metrics.model.registry.Collector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.Unit;
import java.util.Collection;
import java.util.function.Supplier;

/**
 * {@code wsguard_message_size_bytes{direction,route,upstream}}: the sizes of whole messages relayed
 * each way, in {@link MessageSizes}' buckets, with the route's message and byte totals as its
 * {@code _count} and {@code _sum}.
 *
 * <p>A Prometheus collector rather than a Micrometer meter: Micrometer has no histogram read from a
 * function, and recording into a shared one for every message is the cost {@link RouteMetrics}
 * avoids. The counts live in each connection ({@link Traffic#messageSizes}) and are added up here,
 * at scrape time.
 */
final class MessageSizeHistogram implements Collector {

    static final String NAME = "wsguard_message_size_bytes";

    private final Supplier<Collection<RouteMetrics>> routes;

    MessageSizeHistogram(Supplier<Collection<RouteMetrics>> routes) {
        this.routes = routes;
    }

    @Override
    public MetricSnapshot collect() {
        final HistogramSnapshot.Builder histogram = HistogramSnapshot.builder()
                .name(NAME)
                .unit(Unit.BYTES)
                .help("Sizes of whole messages relayed (after decompression), client to upstream (inbound) "
                        + "or upstream to client (outbound)");
        for (RouteMetrics route : routes.get()) {
            for (RouteMetrics.Upstream upstream : route.upstreams()) {
                histogram.dataPoint(point(route, upstream, true));
                histogram.dataPoint(point(route, upstream, false));
            }
        }
        return histogram.build();
    }

    private static HistogramSnapshot.HistogramDataPointSnapshot point(
            RouteMetrics route, RouteMetrics.Upstream upstream, boolean inbound) {
        // One lock per read: the sum may run a message ahead of the buckets on a busy connection,
        // as any two series of one scrape may.
        final long[] counts = upstream.messageSizes(inbound);
        final long bytes = upstream.relayed(inbound ? RouteMetrics.BYTES_IN : RouteMetrics.BYTES_OUT);
        return HistogramSnapshot.HistogramDataPointSnapshot.builder()
                .labels(Labels.of(
                        "direction",
                        inbound ? "inbound" : "outbound",
                        "route",
                        route.route(),
                        "upstream",
                        upstream.target()))
                .classicHistogramBuckets(ClassicHistogramBuckets.of(MessageSizes.UPPER_BOUNDS, counts))
                .sum((double) bytes)
                .build();
    }
}
