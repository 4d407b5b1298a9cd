package io.wsguard.auth;

import io.wsguard.policy.AuthPolicy;
import java.time.Clock;

/**
 * Benchmark-only access to {@link JwtVerifier}'s package-private factory, which takes the size of
 * the verified-token cache. The JMH "uncached" benchmarks build their verifier with a cache of one
 * entry and cycle through more distinct tokens than that, so every call parses and checks the
 * signature, then caches the token (evicting the one before): what a handshake with a new token
 * costs once the production cache (10,000 entries) is full. Lives in the benchmark's sources,
 * never in the proxy's.
 */
public final class SmallCacheVerifiers {

    private SmallCacheVerifiers() {}

    /** A verifier for local keys (publicKey or secret) whose cache holds {@code capacity} tokens. */
    public static JwtVerifier create(AuthPolicy.JwtPolicy policy, int capacity) throws JwtConfigException {
        return JwtVerifier.create(
                policy, Clock.systemUTC(), Runnable::run, null, JwtVerifier.RemoteTiming.DEFAULT, capacity);
    }

    /** Signature checks done by {@code verifier} so far: proves the uncached benchmark really misses. */
    public static long signatureChecks(JwtVerifier verifier) {
        return verifier.signatureChecks();
    }
}
