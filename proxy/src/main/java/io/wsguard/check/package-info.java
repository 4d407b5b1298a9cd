/**
 * The vocabulary every stage shares: a check returns a {@link io.wsguard.check.Verdict}, a
 * {@link io.wsguard.check.Reason} says why and carries the README's status and close code, and a
 * route's {@link io.wsguard.check.Mode} says whether a deny is enforced or only audited. Depends on
 * nothing else in wsguard.
 */
package io.wsguard.check;
