package io.wsguard.bench.jmh;

import io.wsguard.check.Verdict;
import io.wsguard.handshake.BenchChecks;
import io.wsguard.handshake.HandshakeCheck;
import io.wsguard.policy.OriginPolicy;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.server.Request;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The {@code origin.allow} check ({@code OriginAllowListCheck#check}) per handshake, against an allow list of two exact
 * origins and a
 * wildcard: an exact hit, a wildcard hit and a deny. Includes making the {@code HandshakeRequest}.
 */
@State(Scope.Benchmark)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class OriginBench {

    private HandshakeCheck check;
    private Request exact;
    private Request wildcard;
    private Request denied;

    @Setup
    public void setUp() {
        check = BenchChecks.originAllowList(new OriginPolicy(
                List.of("https://app.bench.test", "https://admin.bench.test", "https://*.cdn.bench.test"), false));
        exact = BenchRequests.request(Map.of("Origin", "https://app.bench.test"));
        wildcard = BenchRequests.request(Map.of("Origin", "https://eu.cdn.bench.test"));
        denied = BenchRequests.request(Map.of("Origin", "https://evil.example"));
        expect(originExactHit(), true);
        expect(originWildcardHit(), true);
        expect(originDeny(), false);
    }

    private static void expect(CompletionStage<Verdict> stage, boolean allowed) {
        final Verdict verdict = stage.toCompletableFuture().join();
        if ((verdict == Verdict.ALLOW) != allowed) {
            throw new IllegalStateException("unexpected verdict " + verdict);
        }
    }

    @Benchmark
    public CompletionStage<Verdict> originExactHit() {
        return check.check(BenchRequests.handshake(exact));
    }

    @Benchmark
    public CompletionStage<Verdict> originWildcardHit() {
        return check.check(BenchRequests.handshake(wildcard));
    }

    @Benchmark
    public CompletionStage<Verdict> originDeny() {
        return check.check(BenchRequests.handshake(denied));
    }
}
