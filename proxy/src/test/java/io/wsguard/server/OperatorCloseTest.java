package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.testing.PolicyText;
import io.wsguard.testing.RunningProxy;
import io.wsguard.testing.TestClient;
import io.wsguard.testing.UpstreamServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * README, Admin port: {@code POST /admin/connections/close} closes the matching connections with 1008 and
 * audits each, for logout and revocation. Over the real admin port, against a running proxy.
 */
@Timeout(60)
class OperatorCloseTest {

    @TempDir
    Path dir;

    @Test
    void closedConnectionsGet1008AndAnAuditLineAndOthersStayOpen() throws Exception {
        try (UpstreamServer upstream = new UpstreamServer();
                TestClient client = new TestClient()) {
            final RunningProxy proxy = RunningProxy.start(PolicyText.in(dir)
                    .routes("""
                    - name: chat
                      match: { path: /chat }
                      upstream: { targets: [%s] }
                      auth: none
                    - name: feed
                      match: { path: /feed }
                      upstream: { targets: [%s] }
                      auth: none
                    """.formatted(upstream.uri("/chat"), upstream.uri("/feed")))
                    .extra("admin: { host: 127.0.0.1, port: 0 }\n"));
            try (proxy) {
                final TestClient.Recorder chat = client.connect(proxy.uri("/chat"));
                final TestClient.Recorder feed = client.connect(proxy.uri("/feed"));
                chat.send("before");
                assertThat(chat.next()).isEqualTo("before");

                final HttpResponse<String> response = HttpClient.newHttpClient()
                        .send(
                                HttpRequest.newBuilder(URI.create(
                                                proxy.server().adminUrl() + "/admin/connections/close?route=chat"))
                                        .POST(HttpRequest.BodyPublishers.noBody())
                                        .build(),
                                HttpResponse.BodyHandlers.ofString());
                assertThat(response.statusCode()).isEqualTo(200);
                assertThat(response.body()).contains("1");

                assertThat(chat.awaitClose()).isTrue();
                assertThat(chat.closeCode).isEqualTo(1008);
                assertThat(upstream.closes().poll(10, TimeUnit.SECONDS)).startsWith("1001");
                assertThat(proxy.auditLines()).singleElement().satisfies(line -> assertThat(line)
                        .containsEntry("event", "blocked")
                        .containsEntry("stage", "session")
                        .containsEntry("reason", "session_expired")
                        .containsEntry("route", "chat")
                        .containsEntry("closeCode", 1008)
                        .containsEntry("detail", "closed by operator (route=chat)"));

                // The other route's connection was not matched: it still relays.
                feed.send("still here");
                assertThat(feed.next()).isEqualTo("still here");
                assertThat(feed.closed.getCount()).isEqualTo(1);
            }
        }
    }
}
