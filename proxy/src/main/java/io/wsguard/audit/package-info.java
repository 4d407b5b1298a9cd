/**
 * The audit log (README, Audit log): {@link io.wsguard.audit.AuditLog#record} takes an
 * {@link io.wsguard.audit.AuditEvent} on any thread without blocking; one writer thread coalesces,
 * formats, chains ({@link io.wsguard.audit.MacChain}) and writes lines to a rotating file, stdout, or
 * a syslog server (RFC 5424 over UDP, TCP or TLS, sent by a thread of its own through a bounded buffer).
 * {@link io.wsguard.audit.AuditReader} reads them back for {@code wsguard audit}.
 */
package io.wsguard.audit;
