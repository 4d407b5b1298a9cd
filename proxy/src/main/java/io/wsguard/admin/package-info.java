/**
 * The admin port (README, Admin port): health, readiness, Prometheus metrics, reload, the effective policy,
 * the list of open connections, closing connections by subject, client or route, and a
 * self-contained dashboard page. {@link io.wsguard.admin.AdminServer} serves it; the proxy supplies
 * the actions through {@link io.wsguard.admin.AdminActions}.
 */
package io.wsguard.admin;
