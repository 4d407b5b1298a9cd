package io.wsguard.handshake;

import io.wsguard.auth.JwtVerifier;
import io.wsguard.check.Mode;
import io.wsguard.policy.OriginPolicy;
import java.util.List;

/**
 * Benchmark-only access to the package-private handshake checks, which the proxy builds only
 * through {@link HandshakeChain#compile}. The JMH benchmarks measure one check alone, and a chain
 * around a verifier built with a small cache ({@code io.wsguard.auth.SmallCacheVerifiers}), which a
 * route's policy cannot ask for. Lives in the benchmark's sources, never in the proxy's.
 */
public final class BenchChecks {

    private BenchChecks() {}

    /** The check a route's {@code origin: { allow: … }} compiles to. */
    public static HandshakeCheck originAllowList(OriginPolicy policy) {
        return new OriginAllowListCheck(policy);
    }

    /** An enforcing chain of {@code policy}'s origin check, then the token check with {@code verifier}. */
    public static HandshakeChain originThenToken(OriginPolicy policy, JwtVerifier verifier, List<String> tokenSources) {
        return new HandshakeChain(
                List.of(
                        new OriginAllowListCheck(policy),
                        new JwtCheck(
                                verifier, TokenSources.parse(tokenSources), String.join(", ", tokenSources), false)),
                Mode.ENFORCE);
    }
}
