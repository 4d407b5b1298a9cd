package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.demo.DevCerts;
import io.wsguard.testing.PolicyText;
import io.wsguard.testing.UpstreamServer;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A second, independent client: Node's {@code ws} package ({@code integration-tests/node}) over
 * wss://, verifying the dev CA. Missing {@code node_modules} is a failure, not a skip: CI installs it
 * ({@code .ci/run} runs {@code npm ci}).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NodeClientIT {

    @TempDir
    Path dir;

    @Test
    void nodeWsClientEchoesByteExactThroughWss() throws Exception {
        final DevCerts.DevCertPaths certs = Tls.certs(dir.resolve("certs"));
        try (UpstreamServer upstream = new UpstreamServer()) {
            upstream.acceptSubprotocol("chat.v2");
            final String routes = """
                    - name: echo
                      match: { path: /echo }
                      upstream: { targets: [%s] }
                      auth: none
                      messages: { maxSize: 1MiB }
                    """.formatted(upstream.uri("/echo"));
            try (WsguardProcess proxy = WsguardProcess.start(PolicyText.in(dir)
                    .tls(certs.certificate(), certs.privateKey())
                    .routes(routes))) {
                final Map<String, Object> result = NodeScript.run(
                        "client.mjs",
                        proxy.uri("/echo").toString(),
                        certs.caCertificate().toString());
                assertThat(result)
                        .containsEntry("protocol", "chat.v2")
                        .containsEntry("textEcho", true)
                        .containsEntry("binaryEcho", true)
                        .containsEntry("pong", "node-ping")
                        .containsEntry("closeCode", 4040)
                        .containsEntry("closeReason", "bye from upstream");
                assertThat(upstream.upgrades()).isEqualTo(1);
                assertThat(WsguardProcess.root().resolve("integration-tests/node/package-lock.json"))
                        .isRegularFile();
            }
        }
    }
}
