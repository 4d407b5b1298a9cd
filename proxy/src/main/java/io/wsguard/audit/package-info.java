/**
 * The audit log (README, Audit log): {@link io.wsguard.audit.AuditLog#record} takes an
 * {@link io.wsguard.audit.AuditEvent} on any thread without blocking; one writer thread coalesces,
 * formats, chains ({@link io.wsguard.audit.MacChain}) and writes lines to a rotating file or stdout.
 * {@link io.wsguard.audit.AuditReader} reads them back for {@code wsguard audit}.
 */
package io.wsguard.audit;
