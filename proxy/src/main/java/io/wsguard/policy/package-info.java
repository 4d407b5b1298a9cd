/**
 * The policy file, read and checked before any traffic flows (docs/policy.md). {@link io.wsguard.policy.PolicyLoader}
 * turns YAML into the config records ({@link io.wsguard.policy.Policy} and its sections), with every
 * problem located at a line and column; the compiler in later stages turns the records into checks.
 * Depends only on {@code io.wsguard.check}.
 */
package io.wsguard.policy;
