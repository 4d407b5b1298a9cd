package io.wsguard.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import io.wsguard.policy.LoadedPolicy;
import io.wsguard.testing.SchemaChecked;
import io.wsguard.testing.TestCerts;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import tools.jackson.databind.json.JsonMapper;

/**
 * The repository's deployment files, read as the tests of {@code Dockerfile} and
 * {@code deploy/kubernetes/} need them: the Dockerfile's instructions, and the Kubernetes policy loaded by
 * the real {@code PolicyLoader} (and checked against the policy schema) with its mounted paths moved
 * into a test directory.
 */
public final class DeployFiles {

    /** The repository root, from the proxy module where the tests run. */
    public static final Path ROOT = Path.of("..");

    public static final Path DOCKERFILE = ROOT.resolve("Dockerfile");
    public static final Path KUBERNETES = ROOT.resolve("deploy/kubernetes");
    /** The ConfigMap's policy: the example the image's ports and the manifests' probes are checked against. */
    public static final Path POLICY = KUBERNETES.resolve("policy.yaml");

    /** The directory the image documents for the policy and certificates, and the manifests mount. */
    public static final String CONFIG_DIR = "/etc/wsguard/";

    /** The secrets the Kubernetes policy reads from the environment, with test values. */
    public static final Map<String, String> SECRETS = Map.of(
            "REDIS_PASSWORD", "redis-password-for-the-test",
            "JWT_SECRET", "a-jwt-secret-of-at-least-32-bytes-for-HS256");

    /** One instruction: its keyword in upper case and its arguments, continuation lines joined. */
    public record Instruction(String keyword, String arguments) {}

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Pattern JAVA_OPTS = Pattern.compile("JAVA_OPTS=\"([^\"]*)\"");

    private DeployFiles() {}

    /**
     * The Dockerfile's instructions in order: comments and blank lines dropped, lines ending in a
     * backslash joined with the next (the Dockerfile reference's rules, without parser directives or
     * heredocs, which this Dockerfile does not use).
     */
    public static List<Instruction> dockerfile() throws IOException {
        final List<Instruction> instructions = new ArrayList<>();
        final StringBuilder current = new StringBuilder();
        for (String line : Files.readAllLines(DOCKERFILE, StandardCharsets.UTF_8)) {
            final String stripped = line.strip();
            if (stripped.startsWith("#") || (stripped.isEmpty() && current.length() == 0)) {
                continue;
            }
            if (stripped.endsWith("\\")) {
                current.append(stripped, 0, stripped.length() - 1).append(' ');
                continue;
            }
            current.append(stripped);
            final String text = current.toString().strip();
            current.setLength(0);
            if (text.isEmpty()) {
                continue;
            }
            final int space = text.indexOf(' ');
            assertThat(space).as("instruction without arguments: " + text).isPositive();
            instructions.add(new Instruction(
                    text.substring(0, space).toUpperCase(java.util.Locale.ROOT),
                    text.substring(space + 1).strip()));
        }
        assertThat(current.toString().strip())
                .as("a continuation at the end of the Dockerfile")
                .isEmpty();
        return instructions;
    }

    /**
     * The JSON array of the Dockerfile's exec-form {@code keyword} instruction ({@code ENTRYPOINT},
     * {@code CMD}); there must be exactly one.
     */
    public static List<String> execForm(String keyword) throws IOException {
        final List<Instruction> found =
                dockerfile().stream().filter(i -> i.keyword().equals(keyword)).toList();
        assertThat(found).as(keyword).hasSize(1);
        final String arguments = found.get(0).arguments();
        assertThat(arguments)
                .as(keyword + " in exec form (a JSON array), not shell form")
                .startsWith("[");
        return List.of(JSON.readValue(arguments, String[].class));
    }

    /** The {@code JAVA_OPTS} the image sets ({@code ENV JAVA_OPTS="..."}). */
    public static String imageJavaOpts() throws IOException {
        final Matcher matcher = JAVA_OPTS.matcher(dockerfile().stream()
                .filter(i -> i.keyword().equals("ENV"))
                .map(Instruction::arguments)
                .collect(Collectors.joining(" ")));
        assertThat(matcher.find()).as("ENV JAVA_OPTS=\"...\" in the Dockerfile").isTrue();
        return matcher.group(1);
    }

    /**
     * The Kubernetes policy, loaded as {@code wsguard check} would inside the pod: its
     * {@code /etc/wsguard/} paths point into {@code dir}, where a certificate and key are issued as
     * the Secret {@code wsguard-tls} would mount them ({@code certs/tls.crt}, {@code certs/tls.key}).
     */
    public static LoadedPolicy kubernetesPolicy(Path dir) throws IOException {
        // As every policy a test loads: the binder and the published schema must both accept it.
        return SchemaChecked.load(mountedPolicy(dir, Files.readString(POLICY, StandardCharsets.UTF_8)), SECRETS);
    }

    /** {@code policyText} written to {@code dir/policy.yaml} with its mounted paths moved into {@code dir}. */
    public static Path mountedPolicy(Path dir, String policyText) throws IOException {
        TestCerts.issue(
                Files.createDirectories(dir.resolve("certs")),
                "tls",
                List.of("localhost", "chat.example.com"),
                TestCerts.KeyType.EC,
                TestCerts.KeyFormat.PKCS8);
        final Path file = dir.resolve("policy.yaml");
        Files.writeString(file, policyText.replace(CONFIG_DIR, dir.toAbsolutePath() + "/"), StandardCharsets.UTF_8);
        return file;
    }
}
