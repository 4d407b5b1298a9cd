package io.wsguard.audit;

import static java.util.Objects.requireNonNull;

import io.wsguard.check.Reason;
import io.wsguard.check.Stage;
import java.time.Instant;
import java.util.Locale;

/**
 * One thing wsguard blocked, changed, would have blocked (monitor mode) or refused in its config: the
 * input of {@link AuditLog#record}, one line of the audit log (README, Audit log) once coalesced.
 *
 * <p>{@code detail} is written to the log as is, so it never holds tokens, secrets or payloads;
 * {@code sample} is the only place for payload bytes and is cut to {@code audit.sampleBytes} (and
 * dropped when that is 0) by the log.
 *
 * @param ts when it happened; {@code null}: the log's clock when the event is recorded
 * @param event blocked, modified, monitored or config
 * @param stage handshake, message, session or config; usually {@code reason.stage()}
 * @param reason why
 * @param route the route's name, or {@code null} (no route matched, config events)
 * @param client the client's IP address (after {@code trustedProxies}), or {@code null}
 * @param conn the connection's id, or {@code null} before the upgrade completed
 * @param sub the token's subject, or {@code null}
 * @param origin the request's Origin, or {@code null}
 * @param action {@code refuse}, {@code close}, {@code drop}, {@code modify}, {@code none}, or {@code null}
 * @param closeCode the close code sent to the client, or {@code null}
 * @param status the HTTP status of a refused handshake, or {@code null}
 * @param detail a short human explanation, never {@code null} ({@code null} becomes {@code ""})
 * @param sample the payload, or {@code null}; cut to {@code sampleBytes} UTF-8 bytes by the log
 */
public record AuditEvent(
        Instant ts,
        Kind event,
        Stage stage,
        Reason reason,
        String route,
        String client,
        String conn,
        String sub,
        String origin,
        String action,
        Integer closeCode,
        Integer status,
        String detail,
        String sample) {

    public AuditEvent {
        requireNonNull(event, "event");
        requireNonNull(stage, "stage");
        requireNonNull(reason, "reason");
        detail = detail == null ? "" : detail;
    }

    /** Starts an event with the stage of {@code reason}; every other field {@code null}. */
    public static Builder builder(Kind event, Reason reason) {
        return new Builder(event, reason);
    }

    /** The audit log's {@code event} field. */
    public enum Kind {
        BLOCKED,
        MODIFIED,
        /** What would have been blocked, in a route with {@code mode: monitor}. */
        MONITORED,
        CONFIG,
        /** The shared store's outage or recovery: {@code store_unavailable}, {@code store_available}. */
        STORE,
        /**
         * A connection's end ({@code audit.connections: true}): written from a {@link ConnectionEvent} by
         * {@link AuditLog#recordConnection}, never coalesced, never through {@link AuditLog#record}.
         */
        CONNECTION,
        /** The audit log's own: lines its sink lost ({@code audit_dropped}). */
        AUDIT;

        /** The audit log's spelling, e.g. {@code blocked}. */
        public String code() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Fluent construction of an {@link AuditEvent}; not thread-safe, use one per event. */
    public static final class Builder {
        /** Longer Origins are cut (with an ellipsis): no real one comes near it. */
        static final int MAX_ORIGIN = 256;

        private Instant ts;
        private final Kind event;
        private Stage stage;
        private final Reason reason;
        private String route;
        private String client;
        private String conn;
        private String sub;
        private String origin;
        private String action;
        private Integer closeCode;
        private Integer status;
        private String detail = "";
        private String sample;

        private Builder(Kind event, Reason reason) {
            this.event = requireNonNull(event, "event");
            this.reason = requireNonNull(reason, "reason");
            this.stage = reason.stage();
        }

        public Builder ts(Instant value) {
            ts = value;
            return this;
        }

        public Builder stage(Stage value) {
            stage = value;
            return this;
        }

        public Builder route(String value) {
            route = value;
            return this;
        }

        public Builder client(String value) {
            client = value;
            return this;
        }

        public Builder conn(String value) {
            conn = value;
            return this;
        }

        public Builder sub(String value) {
            sub = value;
            return this;
        }

        public Builder origin(String value) {
            // A real Origin is a scheme, a host and a port; up to 8 KiB of header in every refused
            // handshake's line would let one client flood the log and rotate old evidence away.
            origin = shortOrigin(value);
            return this;
        }

        /** {@code value} cut to {@value #MAX_ORIGIN} characters (with an ellipsis), or as it is. */
        static String shortOrigin(String value) {
            return value == null || value.length() <= MAX_ORIGIN ? value : value.substring(0, MAX_ORIGIN) + "…";
        }

        public Builder action(String value) {
            action = value;
            return this;
        }

        public Builder closeCode(Integer value) {
            closeCode = value;
            return this;
        }

        public Builder status(Integer value) {
            status = value;
            return this;
        }

        public Builder detail(String value) {
            detail = value;
            return this;
        }

        public Builder sample(String value) {
            sample = value;
            return this;
        }

        public AuditEvent build() {
            return new AuditEvent(
                    ts, event, stage, reason, route, client, conn, sub, origin, action, closeCode, status, detail,
                    sample);
        }
    }
}
