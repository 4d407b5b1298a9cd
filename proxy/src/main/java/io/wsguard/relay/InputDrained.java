package io.wsguard.relay;

/**
 * A frame handler told when the connection it reads from has used up what it read and is about
 * to wait for more: the moment to write out frames it held back to send together.
 */
interface InputDrained {

    /** From now on {@link #inputDrained()} is called before every wait; until then, never. */
    void drainSignalled();

    /** Called on the thread that delivered the last frame, before the connection waits for input. */
    void inputDrained();
}
