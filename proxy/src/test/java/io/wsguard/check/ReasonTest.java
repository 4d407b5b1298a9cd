package io.wsguard.check;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The close-code table in {@link Reason} and {@link SessionEnd} says what the relay sends (README: Close codes). */
class ReasonTest {

    @Test
    void aSessionThatRanOutOfTimeGoesAwayAndOneThePolicyEndedIsAPolicyViolation() {
        assertThat(Reason.SESSION_EXPIRED.closeCode()).isEqualTo(CloseCodes.SHUTDOWN);
        assertThat(SessionEnd.EXPIRED.clientCode()).isEqualTo(CloseCodes.SHUTDOWN);
        assertThat(SessionEnd.TOKEN_EXPIRED.clientCode()).isEqualTo(CloseCodes.POLICY_VIOLATION);
        assertThat(SessionEnd.CLOSED_BY_OPERATOR.clientCode()).isEqualTo(CloseCodes.POLICY_VIOLATION);
        for (SessionEnd end : SessionEnd.values()) {
            assertThat(end.reason()).isEqualTo(Reason.SESSION_EXPIRED);
            assertThat(end.upstreamCode()).isEqualTo(CloseCodes.SHUTDOWN);
        }
    }

    @Test
    void aRefusedMessageClosesItsSenderWithTheReasonsCodeAndThePeerAsTheDirectionSays() {
        // From the client: the client gets the reason's code, the upstream 1001.
        assertThat(Reason.PATTERN_DENIED.clientCloseCode(true)).isEqualTo(CloseCodes.POLICY_VIOLATION);
        assertThat(Reason.PATTERN_DENIED.upstreamCloseCode(true)).isEqualTo(CloseCodes.SHUTDOWN);
        assertThat(Reason.MESSAGE_TOO_BIG.clientCloseCode(true)).isEqualTo(CloseCodes.MESSAGE_TOO_BIG);
        assertThat(Reason.BINARY_DENIED.clientCloseCode(true)).isEqualTo(CloseCodes.UNSUPPORTED_DATA);
        assertThat(Reason.INVALID_UTF8.clientCloseCode(true)).isEqualTo(CloseCodes.INVALID_PAYLOAD);
        // From the upstream (direction: both): the upstream gets the reason's code, the client 1014.
        assertThat(Reason.MESSAGE_TOO_BIG.clientCloseCode(false)).isEqualTo(CloseCodes.BAD_GATEWAY);
        assertThat(Reason.MESSAGE_TOO_BIG.upstreamCloseCode(false)).isEqualTo(CloseCodes.MESSAGE_TOO_BIG);
    }

    @Test
    void handshakeRefusalsCloseNothing() {
        for (Reason reason : Reason.values()) {
            if (reason.stage() == Stage.HANDSHAKE && reason != Reason.UPSTREAM_UNAVAILABLE) {
                assertThat(reason.closeCode()).as(reason.code()).isZero();
            }
        }
        // The upstream failing mid-session is the one handshake reason that also ends open connections.
        assertThat(Reason.UPSTREAM_UNAVAILABLE.closeCode()).isEqualTo(CloseCodes.BAD_GATEWAY);
    }
}
