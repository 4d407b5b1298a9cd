package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RawRequest;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The built jar with {@code audit.sink: stdout} and {@code WSGUARD_LOG_FORMAT=json}, as a container
 * log collector sees it: stdout carries the audit lines and nothing else, the ready lines come on
 * stderr, and every other stderr line is a JSON log event from logback's JsonEncoder.
 */
@Timeout(120)
class StdoutJsonIT {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    @TempDir
    Path dir;

    @Test
    void stdoutIsAuditJsonOnlyAndTheLogsAreJsonOnStderr() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                WsguardProcess proxy = WsguardProcess.start(
                        dir,
                        PolicyText.in(dir)
                                .audit("{ sink: stdout }")
                                .extra("admin: { host: 127.0.0.1, port: 0 }\n")
                                .routes("""
                                        - name: chat
                                          match: { path: /chat }
                                          upstream: { targets: [%s] }
                                          origin: { allow: ["https://chat.example.com"] }
                                          auth: none
                                        """.formatted(upstream.uri("/echo")))
                                .text(),
                        Map.of("WSGUARD_LOG_FORMAT", "json"))) {
            final List<String> head = RawRequest.upgradeHeaders();
            head.add("Host: 127.0.0.1:" + proxy.port());
            head.add("Origin: https://evil.example");
            head.add("Sec-WebSocket-Key: " + RawRequest.KEY);
            assertThat(RawRequest.get(proxy.port(), "/chat", head).status()).isEqualTo(403);
            assertThat(upstream.upgrades()).isZero();

            // The line comes when its one-second window closes.
            await().atMost(Duration.ofSeconds(10))
                    .pollInterval(Duration.ofMillis(50))
                    .until(() -> proxy.stdout().stream().anyMatch(l -> l.contains("origin_denied")));
            assertThat(proxy.stdout()).isNotEmpty().allSatisfy(line -> {
                final JsonNode audit = JSON.readTree(line);
                assertThat(audit.isObject()).as(line).isTrue();
                assertThat(audit.get("event").asString()).isEqualTo("blocked");
                assertThat(audit.get("reason").asString()).isEqualTo("origin_denied");
                assertThat(audit.get("status").asInt()).isEqualTo(403);
            });

            final List<String> stderr = proxy.stderr().lines().toList();
            assertThat(stderr)
                    .contains("wsguard: listening on ws://127.0.0.1:" + proxy.port(), "wsguard: audit log at stdout");
            final List<String> logs =
                    stderr.stream().filter(l -> !l.startsWith("wsguard: ")).toList();
            // The admin port's start is logged at INFO: there is at least that one.
            assertThat(logs).isNotEmpty().allSatisfy(line -> {
                final JsonNode event = JSON.readTree(line);
                assertThat(event.get("level").asString()).as(line).isNotEmpty();
                assertThat(event.get("loggerName").asString()).as(line).isNotEmpty();
                assertThat(event.has("formattedMessage")).as(line).isTrue();
            });
            assertThat(logs).anySatisfy(line -> assertThat(
                            JSON.readTree(line).get("formattedMessage").asString())
                    .startsWith("admin listening on http://127.0.0.1:"
                            + proxy.admin().getPort()));
        }
    }
}
