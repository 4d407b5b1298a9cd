/**
 * The heart of wsguard: once a handshake passed its checks, {@link io.wsguard.relay.UpstreamConnector}
 * dials the upstream, and a {@link io.wsguard.relay.ProxySession} pairs the two WebSocket sessions.
 *
 * <pre>
 *   client ──TLS──▶ Jetty server session ──▶ ProxySession.client  (counts message size, relays)
 *                                                  │ sendFrame, then demand()
 *                                                  ▼
 *                          upstream ◀── Jetty client session ◀── ProxySession.upstream
 *   (and the same back: upstream frames relayed to the client, one in flight per direction)
 * </pre>
 *
 * <p>Frames are relayed one at a time per direction with explicit demand (back-pressure); the close
 * handshake is relayed end to end so codes and reasons pass through. Both sessions are Jetty's
 * WebSocket core sessions; both upgrades are wsguard's ({@link io.wsguard.relay.InlineHandshaker} for
 * the client, {@link io.wsguard.relay.UpstreamHandshake} for the upstream), so that both sides read
 * on the selector thread, and both sockets of a connection are watched by the same one
 * ({@link io.wsguard.relay.SelectorAffinity}).
 */
package io.wsguard.relay;
