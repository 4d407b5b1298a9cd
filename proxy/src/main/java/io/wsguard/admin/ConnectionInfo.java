package io.wsguard.admin;

import java.time.Instant;

/**
 * One open client connection as {@code GET /admin/connections} lists it.
 *
 * @param id the connection id, as in the audit log's {@code conn}
 * @param route the route's name
 * @param client the client's IP (after {@code trustedProxies})
 * @param subject the verified JWT {@code sub}, or {@code null} on a route without auth
 * @param jti the verified JWT's {@code jti}, or {@code null} (what {@code POST /admin/revoke?jti=} names)
 * @param openedAt when the upgrade completed
 * @param ageSeconds seconds since {@code openedAt} when the snapshot was taken
 * @param messagesIn messages from the client to the upstream
 * @param messagesOut messages from the upstream to the client
 * @param bytesIn payload bytes from the client
 * @param bytesOut payload bytes to the client
 * @param path what relays the connection's frames: {@code pump} (a route without message rules or
 *     extensions: frames pass as bytes) or {@code session} (Jetty's WebSocket sessions, frame by frame)
 */
public record ConnectionInfo(
        String id,
        String route,
        String client,
        String subject,
        String jti,
        Instant openedAt,
        long ageSeconds,
        long messagesIn,
        long messagesOut,
        long bytesIn,
        long bytesOut,
        String path) {

    /** A connection whose token had no {@code jti}, or that had no token, relayed by the frame pump. */
    public ConnectionInfo(
            String id,
            String route,
            String client,
            String subject,
            Instant openedAt,
            long ageSeconds,
            long messagesIn,
            long messagesOut,
            long bytesIn,
            long bytesOut) {
        this(
                id,
                route,
                client,
                subject,
                null,
                openedAt,
                ageSeconds,
                messagesIn,
                messagesOut,
                bytesIn,
                bytesOut,
                "pump");
    }
}
