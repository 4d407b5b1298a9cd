package io.wsguard.relay;

import io.wsguard.check.Verdict;

/**
 * Checks one whole message's content (JSON, schema, deny rules, sanitization): the relay's view of
 * a route's content rules, so that the relay depends on none of the libraries behind them.
 *
 * <p>Thread-safe; called on Jetty threads, so implementations never block.
 */
public interface ContentInspector {

    /**
     * A whole text message, already valid UTF-8: bytes {@code [off, off + len)} of {@code buf},
     * which the inspector reads and never modifies. Returns {@link Verdict#ALLOW}, a
     * {@link Verdict.Deny} or a {@link Verdict.Rewrite}; never throws.
     */
    Verdict inspectText(byte[] buf, int off, int len);

    /**
     * A whole binary message, bytes {@code [off, off + len)} of {@code buf}; {@code utf8}: whether they
     * are valid UTF-8. Upstreams often parse binary frames as text ({@code JSON.parse(buffer)}), so
     * content rules must not be skippable by sending a message as binary. Never throws.
     */
    Verdict inspectBinary(byte[] buf, int off, int len, boolean utf8);

    /**
     * A PING or PONG payload (up to 125 bytes) or a CLOSE frame's reason (up to 123), bytes
     * {@code [off, off + len)} of {@code buf}: the upstream receives them as they are, so rules that
     * refuse content in messages must not be skippable by sending it in a control frame. Only what
     * can refuse applies here (deny rules), never a rewrite. Returns {@link Verdict#ALLOW} or a
     * {@link Verdict.Deny}; never throws.
     */
    Verdict inspectControl(byte[] buf, int off, int len);
}
