package io.wsguard.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.wsguard.Version;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * wsguard's metrics: one Prometheus registry with the series SPEC §6 names, plus JVM and process
 * gauges (memory, threads, GC, CPU, uptime, open files, resident memory) for benchmarks.
 *
 * <p>Series, with Micrometer's alphabetical label order as {@link #scrape()} prints them:
 * <pre>
 * wsguard_connections_active{route}          gauge
 * wsguard_handshakes_total{outcome,route}    outcome: accepted, or a Reason code (no_route, ...)
 * wsguard_blocked_total{reason,route}        reason: a Reason code
 * wsguard_messages_total{direction,route}    direction: inbound (client to upstream) | outbound
 * wsguard_bytes_total{direction,route}
 * wsguard_ratelimit_store_fallbacks_total{onUnavailable}   rate decisions made without Redis (RedisBuckets)
 * wsguard_cluster_instances                  gauge: live instances at the last heartbeat (cluster.Members)
 * wsguard_cluster_routes_mismatch            gauge: 1 when a live instance's routes hash differs from ours
 * wsguard_build_info{commit,version}         gauge: always 1; the build (io.wsguard.Version)
 * </pre>
 *
 * <p>Thread-safe. Label values come only from the policy's route names, {@code accepted} and
 * {@link io.wsguard.check.Reason} codes, never from client input, so the number of series is bounded.
 */
public final class Metrics implements AutoCloseable {

    /** The {@code route} label of handshakes that matched no route (SPEC §4's 404). */
    public static final String NO_ROUTE = "-";

    /** The Prometheus text format {@link #scrape()} returns, as a Content-Type. */
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final ConcurrentMap<String, RouteMetrics> routes = new ConcurrentHashMap<>();
    private final JvmGcMetrics gc = new JvmGcMetrics();

    /** A registry with the JVM and process binders attached. */
    public Metrics() {
        new JvmMemoryMetrics().bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        gc.bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        new FileDescriptorMetrics().bindTo(registry);
        ProcessMemory.bindTo(registry);
        Gauge.builder("wsguard.build.info", () -> 1)
                .description("The build that runs: its version and git commit; always 1")
                .tags("version", Version.number(), "commit", Version.commit())
                .register(registry);
    }

    /**
     * The counters of one route, created on first use and cached: callers keep the result (per
     * connection, per compiled route) rather than calling this per message.
     *
     * @param name the route's name; {@code null} or empty means no route matched ({@link #NO_ROUTE})
     */
    public RouteMetrics route(String name) {
        final String label = name == null || name.isEmpty() ? NO_ROUTE : name;
        return routes.computeIfAbsent(label, key -> new RouteMetrics(registry, key));
    }

    /** The registry, for components that add their own meters (use the {@code wsguard.} prefix). */
    public MeterRegistry registry() {
        return registry;
    }

    /**
     * What {@code wsguard_blocked_total} counts so far, summed over routes, by reason code: the
     * instance's share of the cluster view's blocked traffic.
     */
    public Map<String, Long> blockedByReason() {
        final Map<String, Long> byReason = new TreeMap<>();
        for (Counter counter : registry.find("wsguard.blocked").counters()) {
            byReason.merge(counter.getId().getTag("reason"), (long) counter.count(), Long::sum);
        }
        return byReason;
    }

    /** Every series in the Prometheus text format 0.0.4 ({@link #CONTENT_TYPE}). */
    public String scrape() {
        return registry.scrape();
    }

    /** Detaches the GC listeners and closes the registry. */
    @Override
    public void close() {
        gc.close();
        registry.close();
    }
}
