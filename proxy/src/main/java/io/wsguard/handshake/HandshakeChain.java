package io.wsguard.handshake;

import io.wsguard.auth.JwtConfigException;
import io.wsguard.auth.JwtVerifier;
import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.cluster.ConnectionLeases;
import io.wsguard.cluster.Revocations;
import io.wsguard.limit.LimitState;
import io.wsguard.limit.RedisBuckets;
import io.wsguard.policy.AuthPolicy;
import io.wsguard.policy.LimitsPolicy;
import io.wsguard.policy.RoutePolicy;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.function.BiConsumer;

/**
 * The compiled handshake checks of one route, run in a fixed order: cheap and unauthenticated
 * checks first (origin, per-IP rate), then the token, then caps that need its subject. Users choose
 * what is checked, never the order.
 *
 * <p>The chain owns monitor mode: in {@link Mode#MONITOR} every deny is reported and the next check
 * still runs, and the result is allow. A check whose stage fails counts as a deny (fail closed).
 *
 * <p>Built by {@link #compile} from the route's policy, like the message stage's
 * {@code ContentRules.compile}: the checks themselves are this package's business. Closing the chain
 * stops what its checks hold (a {@code jwksUri}'s scheduled refresh).
 */
public final class HandshakeChain implements AutoCloseable {

    private final List<HandshakeCheck> checks;
    private final Mode mode;
    private final JwtVerifier verifier;

    HandshakeChain(List<HandshakeCheck> checks, Mode mode) {
        this(checks, mode, null);
    }

    private HandshakeChain(List<HandshakeCheck> checks, Mode mode, JwtVerifier verifier) {
        this.checks = List.copyOf(checks);
        this.mode = mode;
        this.verifier = verifier;
    }

    /**
     * The route's handshake checks in their fixed order (README: check order): cheap and unauthenticated
     * first, then the token, then the caps that need its subject. A route without {@code origin:}
     * gets docs/policy.md's default: same-origin or no Origin. Runs nothing on the executors: they are
     * where the checks continue once requests come.
     *
     * @param limits the route's counters and buckets, which outlive the policy (a reload keeps counting)
     * @param shared what is shared with the running proxy and the other instances: Redis buckets,
     *     connection leases, revocations ({@link SharedState#NONE}: nothing)
     * @param clusterMax {@code proxy.clusterMaxConnections}, taken with the leases; 0 for none
     * @param executor where a handshake continues after Redis answered (on Lettuce's I/O threads)
     * @param jwksExecutor where verifications that may need a {@code jwksUri} fetch run
     * @throws HandshakeConfigException naming the field, relative to the route, that no check can be built from
     */
    public static HandshakeChain compile(
            RoutePolicy route,
            LimitState.RouteLimits limits,
            SharedState shared,
            int clusterMax,
            Executor executor,
            Executor jwksExecutor) {
        final RedisBuckets sharedBuckets = shared.buckets();
        final ConnectionLeases leases = shared.leases();
        final Revocations revocations = shared.revocations();
        final List<HandshakeCheck> checks = new ArrayList<>();
        try {
            checks.add(route.origin()
                    .<HandshakeCheck>map(OriginAllowListCheck::new)
                    .orElse(SameOriginCheck.INSTANCE));
        } catch (IllegalArgumentException e) {
            throw new HandshakeConfigException("origin.allow", e);
        }
        final LimitsPolicy rates = route.limits();
        if (rates.handshakesPerIp().isPresent()) {
            final LimitsPolicy.RateLimitPolicy rate = rates.handshakesPerIp().get();
            try {
                // With a Redis store the local buckets are the fallback (onUnavailable: local).
                checks.add(new HandshakeRateCheck(
                        limits.handshakesPerIp(rate), rate, sharedBuckets, route.name(), executor));
            } catch (IllegalArgumentException e) {
                throw new HandshakeConfigException("limits.handshakes.perIp", e);
            }
        }
        if (route.auth().clientCertificate() == AuthPolicy.ClientCertificate.REQUIRED) {
            // Before the token: a field read, and a client without a certificate need not have its token verified.
            checks.add(ClientCertificateCheck.INSTANCE);
        }
        JwtVerifier verifier = null;
        if (route.auth().jwt().isPresent()) {
            final AuthPolicy.JwtPolicy jwt = route.auth().jwt().get();
            try {
                // The JVM's default trust (javax.net.ssl.trustStore) decides which IdPs a jwksUri may be served by.
                verifier = JwtVerifier.create(jwt, Clock.systemUTC(), jwksExecutor, null);
            } catch (JwtConfigException e) {
                throw new HandshakeConfigException("auth.jwt." + e.field(), e.getMessage());
            }
            // A token without sub would be counted against no subject: with perSubject limits it is refused.
            final boolean subjectRequired = rates.connectionsPerSubject().isPresent()
                    || rates.messagesPerSubject().isPresent()
                    || rates.bytesPerSubject().isPresent();
            checks.add(new JwtCheck(
                    verifier,
                    TokenSources.parse(jwt.tokenSources()),
                    String.join(", ", jwt.tokenSources()),
                    subjectRequired));
            if (revocations != null) {
                checks.add(new RevocationCheck(revocations));
            }
        }
        // With a Redis store the caps are leases shared by every instance, taken in one script
        // together with the cluster-wide maxConnections; the local counters are the fallback.
        if ((leases != null && clusterMax > 0)
                || rates.connectionsPerIp().isPresent()
                || rates.connectionsPerSubject().isPresent()) {
            checks.add(new ConnectionLimitCheck(
                    limits.connectionsPerIp(),
                    rates.connectionsPerIp().orElse(0),
                    limits.connectionsPerSubject(),
                    rates.connectionsPerSubject().orElse(0),
                    leases,
                    route.name(),
                    limits.clusterConnections(),
                    clusterMax,
                    executor));
        }
        return new HandshakeChain(checks, route.mode(), verifier);
    }

    /** Stops the scheduled {@code jwksUri} refresh of the token check, if any. */
    @Override
    public void close() {
        if (verifier != null) {
            verifier.close();
        }
    }

    /**
     * Runs the checks. {@code onDeny} is called for every deny, enforced or monitored (the caller
     * audits it); the returned stage holds the first enforced deny, or {@link Verdict#ALLOW}.
     */
    public CompletionStage<Verdict> run(HandshakeRequest request, BiConsumer<Verdict.Deny, Mode> onDeny) {
        return runFrom(0, request, onDeny);
    }

    private CompletionStage<Verdict> runFrom(
            int index, HandshakeRequest request, BiConsumer<Verdict.Deny, Mode> onDeny) {
        if (index == checks.size()) {
            return HandshakeCheck.ALLOWED;
        }
        CompletionStage<Verdict> stage;
        try {
            stage = checks.get(index).check(request);
        } catch (RuntimeException e) {
            stage = CompletableFuture.failedStage(e);
        }
        return stage.handle((verdict, failure) -> failure != null
                        ? Verdict.deny(
                                Reason.CHECK_FAILED,
                                "check failed: " + failure.getClass().getSimpleName())
                        : verdict)
                .thenCompose(verdict -> {
                    if (verdict instanceof Verdict.Deny deny) {
                        onDeny.accept(deny, mode);
                        if (mode == Mode.ENFORCE) {
                            return CompletableFuture.completedStage(verdict);
                        }
                    }
                    return runFrom(index + 1, request, onDeny);
                });
    }
}
