package io.wsguard.metrics;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code process_resident_memory_bytes}, the resident set size, read from {@code /proc/self/status}
 * (Linux). Micrometer has no RSS binder, and heap gauges miss direct buffers and thread stacks,
 * which is what a proxy with many connections spends memory on.
 */
final class ProcessMemory {

    private static final Path STATUS = Path.of("/proc/self/status");

    private ProcessMemory() {}

    static void bindTo(MeterRegistry registry) {
        if (residentBytes() < 0) {
            return; // not Linux: no gauge rather than one that always says -1
        }
        Gauge.builder("process.resident.memory", ProcessMemory::residentBytes)
                .description("Resident set size of the process")
                .baseUnit("bytes")
                .register(registry);
    }

    /** VmRSS in bytes, or -1 when it cannot be read. Called on scrape only, never on the relay path. */
    static double residentBytes() {
        try {
            for (String line : Files.readAllLines(STATUS, StandardCharsets.UTF_8)) {
                if (line.startsWith("VmRSS:")) {
                    // "VmRSS:	  123456 kB"
                    return Long.parseLong(line.substring("VmRSS:".length())
                                    .replace("kB", "")
                                    .strip())
                            * 1024.0;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }
}
