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
 * handshake is relayed end to end so codes and reasons pass through.
 */
package io.wsguard.relay;
