package io.wsguard.audit;

import static java.util.Objects.requireNonNull;

import java.net.URI;
import java.time.Instant;

/**
 * One connection that opened and has closed, both sides: the input of {@link AuditLog#recordConnection},
 * one {@code connection} line of the audit log ({@code audit.connections: true}). Built once per
 * connection, on the thread that saw its last side close; formatted on the log's writer thread.
 *
 * <p>Nothing here is payload: {@code closeReason} is the reason phrase of a CLOSE frame (at most 123
 * bytes, RFC 6455 §5.5), {@code detail} wsguard's own words, and {@code target} is written without a
 * password or query values.
 *
 * @param ts when the connection's last side closed
 * @param route the route's name
 * @param client the client's IP address (after {@code trustedProxies})
 * @param conn the connection's id, as in its other audit lines and {@code /admin/connections}
 * @param sub the verified token's subject, or {@code null}
 * @param origin the upgrade request's Origin, or {@code null}
 * @param opened when the handshake passed its checks and the upstream was dialled
 * @param durationMillis from {@code opened} to {@code ts}
 * @param messagesIn messages relayed from the client to the upstream
 * @param bytesIn their payload bytes (after decompression)
 * @param messagesOut messages relayed from the upstream to the client
 * @param bytesOut their payload bytes (after decompression)
 * @param closedBy {@code client}, {@code upstream} or {@code proxy}: who began the close
 * @param reason how it ended, e.g. {@code client_closed}, {@code idle_timeout}, {@code pattern_denied}
 * @param closeCode the code of the close that ended it: the closing side's, or what wsguard sent the client; 1006
 *     when a side went away without a CLOSE
 * @param closeReason that close's reason phrase, possibly empty
 * @param detail wsguard's explanation when it closed the connection (e.g. {@code idle timeout 30s}), else empty
 * @param target the upstream target dialled, as the policy names it, or {@code null}
 */
public record ConnectionEvent(
        Instant ts,
        String route,
        String client,
        String conn,
        String sub,
        String origin,
        Instant opened,
        long durationMillis,
        long messagesIn,
        long bytesIn,
        long messagesOut,
        long bytesOut,
        String closedBy,
        String reason,
        int closeCode,
        String closeReason,
        String detail,
        URI target) {

    public ConnectionEvent {
        requireNonNull(ts, "ts");
        requireNonNull(opened, "opened");
        requireNonNull(closedBy, "closedBy");
        requireNonNull(reason, "reason");
        closeReason = closeReason == null ? "" : closeReason;
        detail = detail == null ? "" : detail;
    }
}
