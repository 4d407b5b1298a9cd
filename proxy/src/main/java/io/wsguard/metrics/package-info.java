/**
 * The Prometheus metrics (README, Admin port). {@link io.wsguard.metrics.Metrics} owns the registry and the
 * JVM/process binders; {@link io.wsguard.metrics.RouteMetrics} holds one route's prebuilt counters
 * so that the relay records a message without a map lookup or an allocation. What a connection
 * relays, message sizes included ({@link io.wsguard.metrics.MessageSizes}), it counts itself and the
 * route adds up at scrape time; {@link io.wsguard.metrics.CertificateExpiry} shows when the listeners'
 * certificates expire.
 */
package io.wsguard.metrics;
