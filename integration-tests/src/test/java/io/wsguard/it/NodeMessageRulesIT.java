package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Message rules seen by another language's client: Node's {@code ws} over wss:// against the built
 * jar, on a route with a JSON schema, sanitizing and {@code binary: deny}. The markup comes back
 * sanitized; each refused message closes with the README's code and never reaches the upstream.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NodeMessageRulesIT {

    @TempDir
    Path dir;

    @Test
    void nodeClientSeesSanitizedEchoesAndTheRightCloseCodes() throws Exception {
        final DevCerts.DevCertPaths certs = Tls.certs(dir.resolve("certs"));
        Files.writeString(dir.resolve("chat.json"), """
                {"type": "object", "required": ["type", "text"], "additionalProperties": false,
                 "properties": {"type": {"const": "chat"}, "text": {"type": "string"}}}
                """);
        try (UpstreamServer upstream = new UpstreamServer()) {
            final String routes = """
                    - name: chat
                      match: { path: /chat }
                      upstream: { targets: [%s] }
                      auth: none
                      messages:
                        binary: deny
                        json: { required: true, schema: %s }
                        sanitize: { html: formatting, fields: ["$.text"] }
                    """.formatted(upstream.uri("/echo"), dir.resolve("chat.json"));
            try (WsguardProcess proxy = WsguardProcess.start(PolicyText.in(dir)
                    .tls(certs.certificate(), certs.privateKey())
                    .routes(routes))) {
                // The script prints an object of objects, which Jackson reads as Maps in a Map.
                @SuppressWarnings("unchecked")
                final Map<String, Map<String, Object>> result =
                        (Map<String, Map<String, Object>>) (Map<String, ?>) NodeScript.run(
                                "message-rules.mjs",
                                proxy.uri("/chat").toString(),
                                certs.caCertificate().toString());
                assertThat(result.get("markup").get("replies"))
                        .isEqualTo(List.of("{\"type\":\"chat\",\"text\":\"hi <b>there</b>\"}"));
                assertThat(result.get("markup")).containsEntry("closeCode", 1000);
                assertThat(result.get("schema"))
                        .containsEntry("closeCode", 1008)
                        .containsEntry("replies", List.of());
                assertThat(result.get("notJson"))
                        .containsEntry("closeCode", 1008)
                        .containsEntry("replies", List.of());
                assertThat(result.get("invalidUtf8"))
                        .containsEntry("closeCode", 1007)
                        .containsEntry("replies", List.of());
                assertThat(result.get("binary"))
                        .containsEntry("closeCode", 1003)
                        .containsEntry("replies", List.of());
                // Only the sanitized message ever reached the chat room.
                assertThat(upstream.messages()).containsExactly("{\"type\":\"chat\",\"text\":\"hi <b>there</b>\"}");
            }
        }
    }
}
