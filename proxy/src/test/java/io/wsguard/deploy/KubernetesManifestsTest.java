package io.wsguard.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KeyToPath;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeProjection;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.wsguard.policy.AdminPolicy;
import io.wsguard.policy.ListenerPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.Loopback;
import io.wsguard.policy.Policy;
import io.wsguard.policy.PolicyWarnings;
import io.wsguard.policy.TlsPolicy;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * {@code deploy/kubernetes/}, checked offline (no kubectl, no cluster): every manifest reads as its
 * Kubernetes kind through the fabric8 object model with no field it does not know (a misspelt or
 * misplaced key fails here rather than being dropped by the API server), and what must agree does:
 * the probes and ports with the policy in the ConfigMap, loaded by the real {@code PolicyLoader};
 * the grace period with the preStop sleep and {@code drainTimeout}; the mounts with the Dockerfile's
 * documented paths; the Service and the PodDisruptionBudget with the Deployment's pods.
 */
class KubernetesManifestsTest {

    private static final YAMLMapper YAML = YAMLMapper.builder().build();
    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** Each kind the manifests use, its apiVersion and its model class. */
    private static final Map<String, Kind> KINDS = Map.of(
            "Deployment", new Kind("apps/v1", Deployment.class),
            "Service", new Kind("v1", Service.class),
            "PodDisruptionBudget", new Kind("policy/v1", PodDisruptionBudget.class));

    private record Kind(String apiVersion, Class<? extends HasMetadata> model) {}

    @TempDir
    Path dir;

    private JsonNode kustomization;
    private Deployment deployment;
    private Service service;
    private PodDisruptionBudget pdb;
    private Policy policy;

    @BeforeEach
    void read() throws Exception {
        kustomization = YAML.readTree(
                DeployFiles.KUBERNETES.resolve("kustomization.yaml").toFile());
        deployment = manifest("deployment.yaml", Deployment.class);
        service = manifest("service.yaml", Service.class);
        pdb = manifest("pdb.yaml", PodDisruptionBudget.class);
        final LoadedPolicy loaded = DeployFiles.kubernetesPolicy(dir);
        assertThat(PolicyWarnings.of(loaded)).as("check's warnings").isEmpty();
        policy = loaded.policy();
    }

    @Test
    void everyManifestIsItsKindWithNoUnknownFieldAndKustomizeListsEveryFile() throws Exception {
        final List<String> resources = texts(kustomization.get("resources"));
        final JsonNode generator = kustomization.get("configMapGenerator").get(0);
        final Set<String> listed = new TreeSet<>(resources);
        listed.addAll(texts(generator.get("files")));
        listed.add("kustomization.yaml");
        try (Stream<Path> files = Files.list(DeployFiles.KUBERNETES)) {
            final Set<String> present =
                    files.map(file -> file.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
            assertThat(present)
                    .as("every file in deploy/kubernetes is applied by kustomize")
                    .isEqualTo(listed);
        }
        assertThat(kustomization.get("apiVersion").asString()).isEqualTo("kustomize.config.k8s.io/v1beta1");
        assertThat(kustomization.get("kind").asString()).isEqualTo("Kustomization");

        final Set<String> kinds = new TreeSet<>();
        for (String resource : resources) {
            final JsonNode tree =
                    YAML.readTree(DeployFiles.KUBERNETES.resolve(resource).toFile());
            final String kind = tree.get("kind").asString();
            assertThat(KINDS).as(resource + ": kind").containsKey(kind);
            assertThat(tree.get("apiVersion").asString())
                    .as(resource + ": apiVersion")
                    .isEqualTo(KINDS.get(kind).apiVersion());
            assertThat(unknownFields(JSON.treeToValue(tree, KINDS.get(kind).model()), kind))
                    .as(resource + ": fields the Kubernetes API does not have")
                    .isEmpty();
            kinds.add(kind);
        }
        assertThat(kinds).isEqualTo(KINDS.keySet());
    }

    @Test
    void thePolicyNamesTheSchemaForEditorsWhereItIs() throws Exception {
        final String first =
                Files.readAllLines(DeployFiles.POLICY, StandardCharsets.UTF_8).get(0);
        assertThat(first).startsWith("# yaml-language-server: $schema=");
        final Path schema = DeployFiles.KUBERNETES.resolve(first.substring(first.indexOf('=') + 1));
        assertThat(schema.normalize())
                .isEqualTo(DeployFiles.ROOT
                        .resolve("schema/wsguard-policy.schema.json")
                        .normalize());
        assertThat(schema).isRegularFile();
    }

    @Test
    void aMisspeltFieldIsFoundByTheUnknownFieldCheck() throws Exception {
        // The check above asserts an absence: show that it would see a presence.
        final String text = Files.readString(DeployFiles.KUBERNETES.resolve("deployment.yaml"), StandardCharsets.UTF_8)
                .replace("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true")
                .replace("      terminationGracePeriodSeconds: 45", "      terminationGracePeriod: 45");
        assertThat(unknownFields(JSON.treeToValue(YAML.readTree(text), Deployment.class), "Deployment"))
                .containsExactlyInAnyOrder(
                        "Deployment.spec.template.spec.terminationGracePeriod",
                        "Deployment.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem");
    }

    @Test
    void probesReachHealthzAndReadyzOnThePolicysProbesPortNeverTheAdminPort() {
        final AdminPolicy admin = policy.admin().orElseThrow();
        final AdminPolicy.Probes probes = admin.probes().orElseThrow();
        // /admin/* and the dashboard stay on loopback; the pod network gets the probes port only.
        assertThat(Loopback.isLoopbackName(admin.host())).as("admin.host").isTrue();
        assertThat(probes.host()).isEqualTo("0.0.0.0");

        final Container container = container();
        assertProbe(container.getLivenessProbe(), "/healthz", probes.port());
        assertProbe(container.getStartupProbe(), "/healthz", probes.port());
        assertProbe(container.getReadinessProbe(), "/readyz", probes.port());
        assertThat(container.getPorts())
                .extracting(ContainerPort::getContainerPort)
                .as("the admin port is not declared: nothing outside the pod is meant to reach it")
                .doesNotContain(admin.port());
        final Map<String, String> annotations =
                deployment.getSpec().getTemplate().getMetadata().getAnnotations();
        assertThat(annotations)
                .containsEntry("prometheus.io/port", String.valueOf(probes.port()))
                .containsEntry("prometheus.io/path", "/metrics");
    }

    @Test
    void containerPortsAreNamedAfterTheListenerAndTheProbesPortAndTheServiceTargetsTheListener() {
        final ListenerPolicy listener = policy.listeners().get(0);
        assertThat(policy.listeners()).hasSize(1);
        assertThat(listener.tls()).as("wss: the listener terminates TLS").isPresent();
        assertThat(container().getPorts())
                .extracting(ContainerPort::getName, ContainerPort::getContainerPort)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("wss", listener.port()),
                        org.assertj.core.groups.Tuple.tuple(
                                "probes",
                                policy.admin()
                                        .orElseThrow()
                                        .probes()
                                        .orElseThrow()
                                        .port()));

        assertThat(service.getSpec().getPorts()).singleElement().satisfies(port -> {
            assertThat(port.getTargetPort().getStrVal()).isEqualTo("wss");
            assertThat(port.getPort()).isEqualTo(443);
        });
        assertThat(service.getSpec().getSelector())
                .isEqualTo(deployment.getSpec().getSelector().getMatchLabels());
    }

    @Test
    void theGracePeriodCoversThePreStopSleepAndTheDrainWithRoomForTheJvmToStop() {
        final List<String> preStop =
                container().getLifecycle().getPreStop().getExec().getCommand();
        assertThat(preStop).hasSize(2).first().isEqualTo("sleep");
        final long sleep = Long.parseLong(preStop.get(1));
        final long drain = policy.proxy().drainTimeout().toSeconds();
        final long grace = deployment.getSpec().getTemplate().getSpec().getTerminationGracePeriodSeconds();

        assertThat(sleep)
                .as("a pause for endpoints to update, not a drain of its own")
                .isBetween(1L, 15L);
        assertThat(grace).isGreaterThanOrEqualTo(sleep + drain + 5);
        // A rolling update never takes a ready pod away before its replacement is ready.
        assertThat(deployment
                        .getSpec()
                        .getStrategy()
                        .getRollingUpdate()
                        .getMaxUnavailable()
                        .getIntVal())
                .isZero();
    }

    @Test
    void thePolicyAndCertificatesAreMountedAsOneDirectoryAtTheDockerfilesDocumentedPaths() throws Exception {
        final Container container = container();
        assertThat(container.getArgs()).isEqualTo(cmdOfTheDockerfile());
        final VolumeMount config = container.getVolumeMounts().stream()
                .filter(mount -> mount.getMountPath().equals("/etc/wsguard"))
                .findFirst()
                .orElseThrow();
        // subPath mounts are never updated by the kubelet: no reload would ever see a change.
        assertThat(config.getSubPath()).isNull();
        assertThat(config.getReadOnly()).isTrue();

        final Volume volume = volume(config.getName());
        // The key is readable by the pod's group (fsGroup, the image's group) and no one else.
        assertThat(volume.getProjected().getDefaultMode()).isEqualTo(0440);
        final List<VolumeProjection> sources = volume.getProjected().getSources();
        final Map<String, String> mounted = new java.util.TreeMap<>();
        for (VolumeProjection source : sources) {
            if (source.getConfigMap() != null) {
                assertThat(source.getConfigMap().getName())
                        .isEqualTo(kustomization
                                .get("configMapGenerator")
                                .get(0)
                                .get("name")
                                .asString());
                source.getConfigMap().getItems().forEach(item -> mounted.put(at(config, item), "configMap"));
            } else {
                assertThat(source.getSecret().getName()).isEqualTo("wsguard-tls");
                source.getSecret().getItems().forEach(item -> mounted.put(at(config, item), "secret"));
            }
        }
        final TlsPolicy tls = policy.listeners().get(0).tls().orElseThrow();
        final String inTest = dir.toAbsolutePath() + "/";
        assertThat(mounted)
                .containsExactly(
                        Map.entry(DeployFiles.CONFIG_DIR + "certs/tls.crt", "secret"),
                        Map.entry(DeployFiles.CONFIG_DIR + "certs/tls.key", "secret"),
                        Map.entry(DeployFiles.CONFIG_DIR + "policy.yaml", "configMap"));
        // The policy names the files where the Secret puts them (moved into the test's directory).
        assertThat(tls.certificates()).hasSize(1);
        final TlsPolicy.KeyPairPolicy pair = tls.certificates().get(0);
        assertThat(pair.certificate().toString().replace(inTest, DeployFiles.CONFIG_DIR))
                .isEqualTo(DeployFiles.CONFIG_DIR + "certs/tls.crt");
        assertThat(pair.privateKey().toString().replace(inTest, DeployFiles.CONFIG_DIR))
                .isEqualTo(DeployFiles.CONFIG_DIR + "certs/tls.key");
        // In place, so that the kubelet's symlink swap reaches the running pods (no hash suffix).
        assertThat(kustomization
                        .get("generatorOptions")
                        .get("disableNameSuffixHash")
                        .asBoolean())
                .isTrue();
    }

    @Test
    void thePodRunsAsTheImagesNonRootUserWithAReadOnlyRootNoCapabilitiesAndRuntimeDefaultSeccomp() throws Exception {
        final PodSpec pod = deployment.getSpec().getTemplate().getSpec();
        final String user = DeployFiles.dockerfile().stream()
                .filter(i -> i.keyword().equals("USER"))
                .findFirst()
                .orElseThrow()
                .arguments();
        assertThat(pod.getSecurityContext().getRunAsNonRoot()).isTrue();
        assertThat(pod.getSecurityContext().getRunAsUser() + ":"
                        + pod.getSecurityContext().getRunAsGroup())
                .isEqualTo(user);
        assertThat(pod.getSecurityContext().getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
        assertThat(pod.getAutomountServiceAccountToken()).isFalse();

        final Container container = container();
        assertThat(container.getSecurityContext().getReadOnlyRootFilesystem()).isTrue();
        assertThat(container.getSecurityContext().getAllowPrivilegeEscalation()).isFalse();
        assertThat(container.getSecurityContext().getRunAsNonRoot()).isTrue();
        assertThat(container.getSecurityContext().getCapabilities().getDrop()).containsExactly("ALL");
        assertThat(container.getSecurityContext().getCapabilities().getAdd()).isNullOrEmpty();
        // With the root read-only, /tmp is the JVM's only scratch space, and it writes no hsperfdata.
        final VolumeMount tmp = container.getVolumeMounts().stream()
                .filter(mount -> mount.getMountPath().equals("/tmp"))
                .findFirst()
                .orElseThrow();
        assertThat(volume(tmp.getName()).getEmptyDir()).isNotNull();
        assertThat(env(container, "JAVA_OPTS")).contains("-XX:-UsePerfData");
    }

    @Test
    void theMemoryLimitIsSetAndRequestedWholeForTheHeapTheLauncherSizesFromIt() {
        final Map<String, Quantity> limits = container().getResources().getLimits();
        final Map<String, Quantity> requests = container().getResources().getRequests();
        assertThat(limits).containsKey("memory").doesNotContainKey("cpu");
        assertThat(requests.get("memory")).isEqualTo(limits.get("memory"));
        // The launcher's heap is MaxRAMPercentage=50 of the limit: at least 256 MiB of heap.
        assertThat(Quantity.getAmountInBytes(limits.get("memory")).longValue()).isGreaterThanOrEqualTo(512L << 20);
        assertThat(env(container(), "JAVA_OPTS")).doesNotContain("-Xmx", "MaxRAMPercentage");
    }

    @Test
    void theSecretsThePolicyReadsComeFromSecretsInTheEnvironmentAndRedisIsShared() throws Exception {
        final Matcher matcher = Pattern.compile("\\$\\{([A-Z_][A-Z0-9_]*)")
                .matcher(Files.readString(DeployFiles.POLICY, StandardCharsets.UTF_8));
        final Set<String> read = new TreeSet<>();
        while (matcher.find()) {
            read.add(matcher.group(1));
        }
        assertThat(read).isEqualTo(DeployFiles.SECRETS.keySet());
        for (String name : read) {
            assertThat(container().getEnv())
                    .filteredOn(variable -> variable.getName().equals(name))
                    .singleElement()
                    .satisfies(variable -> assertThat(
                                    variable.getValueFrom().getSecretKeyRef().getName())
                            .isEqualTo("wsguard-secrets"));
        }
        assertThat(policy.rateLimitStore().type())
                .as("replicas share their limits (README: Running a cluster)")
                .isEqualTo(io.wsguard.policy.RateLimitStorePolicy.Type.REDIS);
        assertThat(policy.rateLimitStore().redis().orElseThrow().password()).isPresent();
    }

    @Test
    void theDisruptionBudgetSelectsTheDeploymentsPodsAndLeavesMostOfThemServing() {
        final Map<String, String> podLabels =
                deployment.getSpec().getTemplate().getMetadata().getLabels();
        assertThat(podLabels)
                .containsAllEntriesOf(deployment.getSpec().getSelector().getMatchLabels());
        assertThat(pdb.getSpec().getSelector().getMatchLabels())
                .isEqualTo(deployment.getSpec().getSelector().getMatchLabels());
        assertThat(pdb.getSpec().getMaxUnavailable().getIntVal())
                .isPositive()
                .isLessThan(deployment.getSpec().getReplicas());
        assertThat(container().getImage())
                .isEqualTo(kustomization.get("images").get(0).get("name").asString());
    }

    private Container container() {
        assertThat(deployment.getSpec().getTemplate().getSpec().getContainers()).hasSize(1);
        return deployment.getSpec().getTemplate().getSpec().getContainers().get(0);
    }

    private Volume volume(String name) {
        return deployment.getSpec().getTemplate().getSpec().getVolumes().stream()
                .filter(v -> v.getName().equals(name))
                .findFirst()
                .orElseThrow();
    }

    private static String at(VolumeMount mount, KeyToPath item) {
        return mount.getMountPath() + "/" + item.getPath();
    }

    private static String env(Container container, String name) {
        return container.getEnv().stream()
                .filter(variable -> variable.getName().equals(name))
                .findFirst()
                .orElseThrow()
                .getValue();
    }

    private void assertProbe(Probe probe, String path, int port) {
        assertThat(probe.getHttpGet().getPath()).isEqualTo(path);
        final String portName = probe.getHttpGet().getPort().getStrVal();
        assertThat(portName).as("a named port").isNotNull();
        assertThat(probe.getHttpGet().getScheme())
                .as("plain HTTP, as the probes port serves")
                .isNull();
        // The name resolves to the container port that is the policy's probes port.
        assertThat(portNumber(portName)).isEqualTo(port);
    }

    private int portNumber(String name) {
        return container().getPorts().stream()
                .filter(port -> name.equals(port.getName()))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no container port named " + name))
                .getContainerPort();
    }

    private static List<String> cmdOfTheDockerfile() throws IOException {
        final String cmd = DeployFiles.dockerfile().stream()
                .filter(i -> i.keyword().equals("CMD"))
                .findFirst()
                .orElseThrow()
                .arguments();
        return List.of(JSON.readValue(cmd, String[].class));
    }

    private <T> T manifest(String file, Class<T> type) throws IOException {
        return JSON.treeToValue(
                YAML.readTree(DeployFiles.KUBERNETES.resolve(file).toFile()), type);
    }

    private static List<String> texts(JsonNode array) {
        final List<String> texts = new ArrayList<>();
        array.forEach(node -> texts.add(node.asString()));
        return texts;
    }

    /**
     * The paths of every field the model did not know: fabric8 keeps them in each object's
     * {@code additionalProperties} rather than failing, so the whole object graph is walked.
     */
    static List<String> unknownFields(Object model, String path) {
        final List<String> unknown = new ArrayList<>();
        walk(model, path, unknown);
        return unknown;
    }

    private static void walk(Object value, String path, List<String> unknown) {
        if (value instanceof List<?> list) {
            for (int i = 0; i < list.size(); i++) {
                walk(list.get(i), path + "[" + i + "]", unknown);
            }
            return;
        }
        if (value instanceof Map<?, ?> map) {
            map.forEach((key, item) -> walk(item, path + "." + key, unknown));
            return;
        }
        if (value == null || !value.getClass().getName().startsWith("io.fabric8.kubernetes.api.model.")) {
            return;
        }
        for (Method getter : value.getClass().getMethods()) {
            if (getter.getParameterCount() != 0
                    || Modifier.isStatic(getter.getModifiers())
                    || getter.getDeclaringClass() == Object.class
                    || !getter.getName().startsWith("get")) {
                continue;
            }
            final Object field = invoke(getter, value);
            if (getter.getName().equals("getAdditionalProperties")) {
                ((Map<?, ?>) field).keySet().forEach(key -> unknown.add(path + "." + key));
            } else {
                final String name = Character.toLowerCase(getter.getName().charAt(3))
                        + getter.getName().substring(4);
                walk(field, path + "." + name, unknown);
            }
        }
    }

    private static Object invoke(Method getter, Object target) {
        try {
            return getter.invoke(target);
        } catch (IllegalAccessException | InvocationTargetException e) {
            throw new IllegalStateException(getter + " failed", e);
        }
    }
}
