package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * One check of a WebSocket upgrade request, run before wsguard dials the upstream.
 *
 * <p>Built once per policy from its config record and shared by every connection: implementations
 * are immutable and thread-safe. {@link #check} runs on a Jetty thread and must not block; a check
 * that needs I/O (Redis, a JWKS refresh) returns a stage that completes later, on any thread.
 */
@FunctionalInterface
public interface HandshakeCheck {

    /** Shared, already-completed "allow"; {@code completedStage} cannot be completed again by callers. */
    CompletionStage<Verdict> ALLOWED = CompletableFuture.completedStage(Verdict.ALLOW);

    /** Decides on one request; never writes a response, never throws for a refusal (returns a deny). */
    CompletionStage<Verdict> check(HandshakeRequest request);

    static CompletionStage<Verdict> deny(Reason reason, String detail) {
        return CompletableFuture.completedStage(Verdict.deny(reason, detail));
    }
}
