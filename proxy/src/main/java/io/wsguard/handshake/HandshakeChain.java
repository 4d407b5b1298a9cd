package io.wsguard.handshake;

import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.BiConsumer;

/**
 * The compiled handshake checks of one route, run in a fixed order: cheap and unauthenticated
 * checks first (origin, per-IP rate), then the token, then caps that need its subject. Users choose
 * what is checked, never the order.
 *
 * <p>The chain owns monitor mode: in {@link Mode#MONITOR} every deny is reported and the next check
 * still runs, and the result is allow. A check whose stage fails counts as a deny (fail closed).
 */
public final class HandshakeChain {

    private final List<HandshakeCheck> checks;
    private final Mode mode;

    public HandshakeChain(List<HandshakeCheck> checks, Mode mode) {
        this.checks = List.copyOf(checks);
        this.mode = mode;
    }

    /**
     * Runs the checks. {@code onDeny} is called for every deny, enforced or monitored (the caller
     * audits it); the returned stage holds the first enforced deny, or {@link Verdict#ALLOW}.
     */
    public CompletionStage<Verdict> run(HandshakeRequest request, BiConsumer<Verdict.Deny, Mode> onDeny) {
        return runFrom(0, request, onDeny);
    }

    private CompletionStage<Verdict> runFrom(int index, HandshakeRequest request, BiConsumer<Verdict.Deny, Mode> onDeny) {
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
                        ? Verdict.deny(Reason.CHECK_FAILED, "check failed: " + failure.getClass().getSimpleName())
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
