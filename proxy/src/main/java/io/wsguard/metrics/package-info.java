/**
 * The Prometheus metrics (README, Admin port). {@link io.wsguard.metrics.Metrics} owns the registry and the
 * JVM/process binders; {@link io.wsguard.metrics.RouteMetrics} holds one route's prebuilt counters
 * so that the relay records a message without a map lookup or an allocation.
 */
package io.wsguard.metrics;
