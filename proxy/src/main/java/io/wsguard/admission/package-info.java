/**
 * What one connection holds while it is admitted: an {@link io.wsguard.admission.Admission} collects
 * the slots and references its handshake took (the proxy-wide connection slot, the policy version,
 * the connection caps' counts, the upstream target) and gives all of them back once, whichever way
 * the connection ends. It is made with the handshake, filled as the handshake goes on, and carried
 * by the session to its close. Depends on nothing else in wsguard.
 */
package io.wsguard.admission;
