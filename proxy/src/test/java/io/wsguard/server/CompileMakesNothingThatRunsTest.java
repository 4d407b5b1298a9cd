package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.handshake.SharedState;
import io.wsguard.limit.LimitState;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.testing.SchemaChecked;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Compiling a policy starts no thread and makes no upstream client, whatever the policy
 * asks for (a {@code jwksUri} with its refresh, a Redis store, rate limits, a {@code wss://}
 * upstream). That is what lets {@code wsguard check} compile exactly what {@code run} would, with
 * no thread pool; starting the policy makes the upstream clients and takes the session events.
 */
class CompileMakesNothingThatRunsTest {

    @TempDir
    Path dir;

    private LoadedPolicy everything() throws Exception {
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, """
                version: 1
                listeners: [{ port: 0 }]
                rateLimitStore: { type: redis, redis: { uri: 'redis://127.0.0.1:1', onUnavailable: local } }
                routes:
                  - name: chat
                    match: { path: /chat }
                    upstream: { targets: ['wss://127.0.0.1:9443/chat', 'ws://127.0.0.1:9000/chat'] }
                    auth:
                      jwt:
                        algorithms: [RS256]
                        jwksUri: https://127.0.0.1:1/.well-known/jwks.json
                        tokenSources: [header, subprotocol]
                    limits:
                      handshakes: { perIp: { rate: 10/s, burst: 20 } }
                      connections: { perIp: 50, perSubject: 5 }
                      messages: { perConnection: { rate: 50/s }, perSubject: { rate: 200/s } }
                    messages:
                      direction: both
                      deny: [ { name: script-tag, pattern: '(?i)<script' } ]
                """);
        return SchemaChecked.load(file, Map.of());
    }

    private static Set<Thread> liveThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(Thread::isAlive)
                .collect(Collectors.toSet());
    }

    @Test
    void compilingStartsNoThreadAndMakesNoClient() throws Exception {
        final LoadedPolicy loaded = everything();
        final Set<Thread> before = liveThreads();

        final CompiledPolicy compiled =
                CompiledPolicy.compile(loaded, new LimitState(), SharedState.NONE, Runnable::run, Runnable::run);
        try {
            final CompiledRoute chat = compiled.routeList().get(0);
            assertThat(chat.name()).isEqualTo("chat");
            // Structural: the upstream client and the session events are starting's, not compiling's.
            assertThat(chat.connector()).isNull();
            assertThat(chat.events()).isNull();
            assertThat(liveThreads()).as("threads started by compiling").isSubsetOf(before);
        } finally {
            compiled.stop();
        }
    }

    @Test
    void checkCompilesWithoutAThreadPool() throws Exception {
        final LoadedPolicy loaded = everything();
        final Set<Thread> before = liveThreads();

        PolicyCheck.compile(loaded);

        assertThat(liveThreads())
                .as("threads started by wsguard check's compile")
                .isSubsetOf(before);
    }
}
