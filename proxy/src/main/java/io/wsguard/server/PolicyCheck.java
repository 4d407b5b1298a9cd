package io.wsguard.server;

import io.wsguard.handshake.SharedState;
import io.wsguard.limit.LimitState;
import io.wsguard.policy.LoadedPolicy;

/** Compiles a policy without serving it, so {@code wsguard check} finds what {@code run} would. */
public final class PolicyCheck {
    private PolicyCheck() {}

    /**
     * Throws {@link io.wsguard.policy.PolicyException} with every located problem. Needs no thread
     * pool: compiling makes nothing that runs, and nothing is run on the executors it is given.
     */
    public static void compile(LoadedPolicy loaded) {
        final CompiledPolicy compiled =
                CompiledPolicy.compile(loaded, new LimitState(), SharedState.NONE, Runnable::run, Runnable::run);
        compiled.stop();
    }
}
