package io.wsguard.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The heap flags {@code run} sets in its own JVM: each test starts a fresh JVM with the flags an
 * operator might give, so what the test JVM itself was started with does not matter.
 */
@Timeout(60)
class HeapReturnTest {

    @Test
    void g1GetsPeriodicCollectionsAndTightFreeRatios() throws Exception {
        final List<String> lines = probe("-XX:+UseG1GC");
        assertThat(lines)
                .containsExactly(
                        "applied [MinHeapFreeRatio=10, MaxHeapFreeRatio=20, G1PeriodicGCInterval=10000]",
                        "MinHeapFreeRatio=10",
                        "MaxHeapFreeRatio=20",
                        "G1PeriodicGCInterval=10000");
    }

    @Test
    void aFlagTheOperatorGaveIsKept() throws Exception {
        final List<String> lines = probe("-XX:+UseG1GC", "-XX:MaxHeapFreeRatio=50", "-XX:G1PeriodicGCInterval=60000");
        assertThat(lines)
                .containsExactly(
                        "applied [MinHeapFreeRatio=10]",
                        "MinHeapFreeRatio=10",
                        "MaxHeapFreeRatio=50",
                        "G1PeriodicGCInterval=60000");
    }

    @Test
    void aMinimumAboveOurMaximumWinsOverIt() throws Exception {
        final List<String> lines = probe("-XX:+UseG1GC", "-XX:MinHeapFreeRatio=30");
        assertThat(lines)
                .containsExactly(
                        "applied [G1PeriodicGCInterval=10000]",
                        "MinHeapFreeRatio=30",
                        "MaxHeapFreeRatio=70",
                        "G1PeriodicGCInterval=10000");
    }

    @Test
    void theSerialCollectorGetsTheRatiosOnly() throws Exception {
        final List<String> lines = probe("-XX:+UseSerialGC");
        assertThat(lines)
                .containsExactly(
                        "applied [MinHeapFreeRatio=10, MaxHeapFreeRatio=20]",
                        "MinHeapFreeRatio=10",
                        "MaxHeapFreeRatio=20",
                        "G1PeriodicGCInterval=0");
    }

    @Test
    void switchedOffItLeavesEveryDefault() throws Exception {
        final List<String> lines = probe("-XX:+UseG1GC", "-Dwsguard.heapReturn=false");
        assertThat(lines)
                .containsExactly("applied []", "MinHeapFreeRatio=40", "MaxHeapFreeRatio=70", "G1PeriodicGCInterval=0");
    }

    /** Runs {@link Probe} in a new JVM with {@code jvmOptions}; its output lines. */
    private static List<String> probe(String... jvmOptions) throws IOException, InterruptedException {
        final List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.addAll(List.of(jvmOptions));
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Probe.class.getName()));
        final Process process =
                new ProcessBuilder(command).redirectErrorStream(true).start();
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        final String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.exitValue()).as(output).isZero();
        return output.lines().toList();
    }

    /** Applies the flags and prints what it applied, then each flag as the JVM now reports it. */
    public static final class Probe {
        public static void main(String[] args) {
            System.out.println("applied " + HeapReturn.apply());
            final HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            for (String name : List.of("MinHeapFreeRatio", "MaxHeapFreeRatio", "G1PeriodicGCInterval")) {
                System.out.println(name + "=" + hotSpot.getVMOption(name).getValue());
            }
        }
    }
}
