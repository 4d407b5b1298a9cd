package io.wsguard.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CPU time and resident memory of the process(es) under test, read from {@code /proc}. A target may
 * be several processes (NGINX's master and workers): the figures are summed over all of them.
 */
final class ProcStats {

    private final List<Long> pids;
    private final long clockTicksPerSecond;

    ProcStats(List<Long> pids, long clockTicksPerSecond) {
        this.pids = List.copyOf(pids);
        this.clockTicksPerSecond = clockTicksPerSecond;
    }

    /** {@code "123,456"} as passed by run.sh; empty means "nothing to measure" (the direct leg). */
    static ProcStats parse(String pidList, long clockTicksPerSecond) {
        final List<Long> pids = new ArrayList<>();
        for (String pid : pidList.split(",", -1)) {
            if (!pid.isBlank()) {
                pids.add(Long.parseLong(pid.strip()));
            }
        }
        return new ProcStats(pids, clockTicksPerSecond);
    }

    boolean isEmpty() {
        return pids.isEmpty();
    }

    /** User and system CPU time in microseconds, each summed over the targets. */
    record Cpu(long userMicros, long systemMicros) {
        static final Cpu ZERO = new Cpu(0, 0);

        long totalMicros() {
            return userMicros + systemMicros;
        }
    }

    /** User plus system CPU time in microseconds, summed over the targets. */
    long cpuMicros() throws IOException {
        return cpu().totalMicros();
    }

    /**
     * User and system CPU time, apart: user time is the process's own work (parsing, copying,
     * callbacks), system time the kernel's on its behalf (syscalls, TCP, wake-ups).
     */
    Cpu cpu() throws IOException {
        long userTicks = 0;
        long systemTicks = 0;
        for (long pid : pids) {
            final String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            // The command name (field 2) may contain spaces and parentheses: count fields from the last ')'.
            final String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ", -1);
            // After the name: state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
            userTicks += Long.parseLong(fields[11]);
            systemTicks += Long.parseLong(fields[12]);
        }
        return new Cpu(userTicks * 1_000_000L / clockTicksPerSecond, systemTicks * 1_000_000L / clockTicksPerSecond);
    }

    /** Resident set size in KiB ({@code VmRSS}), summed over the targets. */
    long rssKiB() throws IOException {
        long kib = 0;
        for (long pid : pids) {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    kib += Long.parseLong(line.substring(6).strip().split("\\s+", -1)[0]);
                }
            }
        }
        return kib;
    }
}
