package io.wsguard.audit;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.check.Reason;
import org.junit.jupiter.api.Test;

/** Client-controlled text in audit output: bounded in the log, harmless on the operator's terminal. */
class AuditTextLimitsTest {

    @Test
    void anOriginLongerThanAnyRealOneIsCut() {
        final String huge = "https://" + "a".repeat(8_000) + ".example";
        final AuditEvent event = AuditEvent.builder(AuditEvent.Kind.BLOCKED, Reason.ORIGIN_DENIED)
                .origin(huge)
                .build();
        assertThat(event.origin())
                .hasSize(AuditEvent.Builder.MAX_ORIGIN + 1)
                .startsWith("https://aaa")
                .endsWith("…");
        assertThat(AuditEvent.builder(AuditEvent.Kind.BLOCKED, Reason.ORIGIN_DENIED)
                        .origin("https://chat.example.com")
                        .build()
                        .origin())
                .isEqualTo("https://chat.example.com");
    }

    @Test
    void controlCharactersNeverReachTheTerminal() {
        assertThat(AuditReader.printable("alice\n2026-11-23T00:00:00Z blocked fake\u001b[2J\u009b\u007f"))
                .isEqualTo("alice?2026-11-23T00:00:00Z blocked fake?[2J??");
        assertThat(AuditReader.printable("plain ünïcode")).isEqualTo("plain ünïcode");
    }
}
