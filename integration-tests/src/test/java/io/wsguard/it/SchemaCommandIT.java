package io.wsguard.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code wsguard schema} from the built jar: the schema file of the repository root, byte for byte. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SchemaCommandIT {

    @TempDir
    Path dir;

    @Test
    void theJarPrintsTheSchemaAtTheRepositoryRoot() throws Exception {
        final WsguardProcess.Result result = WsguardProcess.runToCompletion(dir, "schema");

        assertThat(result.exit()).as(result.stderr()).isZero();
        assertThat(result.stderr()).isEmpty();
        assertThat(result.stdout())
                .isEqualTo(Files.readString(WsguardProcess.root().resolve("schema/wsguard-policy.schema.json")));
    }
}
