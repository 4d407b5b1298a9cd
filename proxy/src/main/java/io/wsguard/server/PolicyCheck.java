package io.wsguard.server;

import io.wsguard.limit.LimitState;
import io.wsguard.policy.LoadedPolicy;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.eclipse.jetty.util.thread.ScheduledExecutorScheduler;

/** Compiles a policy without serving it, so {@code wsguard check} finds what {@code run} would. */
public final class PolicyCheck {
    private PolicyCheck() {}

    /** Throws {@link io.wsguard.policy.PolicyException} with every located problem. */
    public static void compile(LoadedPolicy loaded) {
        final CompiledPolicy compiled = CompiledPolicy.from(
                loaded, new QueuedThreadPool(), new ScheduledExecutorScheduler(), route -> null, new LimitState(), Runnable::run, null);
        compiled.stop();
    }

}
