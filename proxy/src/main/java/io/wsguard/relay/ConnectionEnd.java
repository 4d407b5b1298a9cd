package io.wsguard.relay;

import java.util.Locale;

/**
 * How a proxied connection ended: who began the close, why, and the close that ended it. Decided once
 * per connection, by the first of these to happen: a CLOSE from the client or the upstream, a side
 * going away without one, or wsguard closing the connection (a rule, a timeout, an operator, a drain).
 *
 * @param by who began the close
 * @param reason how it ended, in the audit log's words: {@code client_closed}, {@code upstream_closed},
 *     {@code client_lost} or {@code upstream_lost} (went away without a CLOSE) for the peers; for wsguard
 *     {@code idle_timeout}, {@code max_lifetime}, {@code token_expired}, {@code closed_by_operator},
 *     {@code drain}, or the code of the rule that refused a message or frame (e.g. {@code pattern_denied},
 *     {@code message_too_big}, {@code protocol_error})
 * @param code the closing side's close code; when wsguard closed, the code the client got; 1006 for a
 *     side that went away
 * @param phrase that close's reason phrase, possibly empty
 * @param detail wsguard's explanation when it closed (the same as its blocked line's), else empty
 */
public record ConnectionEnd(By by, String reason, int code, String phrase, String detail) {

    /** Who began the close. */
    public enum By {
        CLIENT,
        UPSTREAM,
        /** wsguard: a rule, a timeout, an operator, a drain. */
        PROXY;

        /** The audit log's spelling, e.g. {@code proxy}. */
        public String code() {
            return name().toLowerCase(Locale.ROOT);
        }
    }
}
