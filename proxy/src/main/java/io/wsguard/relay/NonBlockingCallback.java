package io.wsguard.relay;

import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.Invocable;

/**
 * A fill-interest callback that tells Jetty's selector it never blocks, so the selector thread runs
 * it itself instead of handing the readable socket to a pool thread. True of a relaying connection:
 * a frame goes to the other side's non-blocking send, and the next read waits for that send.
 */
record NonBlockingCallback(Callback delegate) implements Callback {

    @Override
    public void succeeded() {
        delegate.succeeded();
    }

    @Override
    public void failed(Throwable cause) {
        delegate.failed(cause);
    }

    @Override
    public Invocable.InvocationType getInvocationType() {
        return Invocable.InvocationType.NON_BLOCKING;
    }
}
