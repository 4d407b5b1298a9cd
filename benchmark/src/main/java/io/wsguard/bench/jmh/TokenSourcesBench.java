package io.wsguard.bench.jmh;

import io.wsguard.handshake.TokenSources;
import java.util.List;
import java.util.Map;
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
 * {@link TokenSources#find} per handshake: a bearer token in the {@code Authorization} header, and
 * one in {@code Sec-WebSocket-Protocol} after another subprotocol (what browsers send).
 */
@State(Scope.Benchmark)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class TokenSourcesBench {

    /** A realistic RS256 token's length (about 480 characters); its content does not matter here. */
    private static final String TOKEN =
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "x".repeat(100) + "." + "y".repeat(342);

    private TokenSources header;
    private TokenSources subprotocol;
    private Request withHeader;
    private Request withSubprotocol;

    @Setup
    public void setUp() {
        header = TokenSources.parse(List.of("header"));
        subprotocol = TokenSources.parse(List.of("subprotocol"));
        withHeader = BenchRequests.request(Map.of("Authorization", "Bearer " + TOKEN));
        withSubprotocol = BenchRequests.request(Map.of("Sec-WebSocket-Protocol", "chat.v1, bearer." + TOKEN));
        if (!(findHeader() instanceof TokenSources.Found h && TOKEN.equals(h.token()))
                || !(findSubprotocol() instanceof TokenSources.Found p && TOKEN.equals(p.token()))) {
            throw new IllegalStateException("token not found");
        }
    }

    @Benchmark
    public TokenSources.Credentials findHeader() {
        return header.find(BenchRequests.handshake(withHeader));
    }

    @Benchmark
    public TokenSources.Credentials findSubprotocol() {
        return subprotocol.find(BenchRequests.handshake(withSubprotocol));
    }
}
