package io.wsguard.server;

import com.sun.management.HotSpotDiagnosticMXBean;
import com.sun.management.VMOption;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

/**
 * Lets the JVM give back the heap a burst of handshakes grew, once the proxy is idle again.
 *
 * <p>A TLS handshake leaves tens of KiB of garbage, so thousands of clients reconnecting at once
 * grow the heap far past what their open connections keep alive, and with the JVM's defaults the
 * collector keeps that memory committed for good: 5,000 idle WSS connections cost 57-73 KiB of RSS
 * each, of which 17 KiB is live. The flags set here are HotSpot's "manageable" ones, meant to be
 * changed at run time: a concurrent cycle after {@link #PERIODIC_GC_INTERVAL_MS} without any
 * collection (never while the proxy relays traffic, which collects far more often), after which G1
 * shrinks the heap to keep {@link #MIN_HEAP_FREE_RATIO}-{@link #MAX_HEAP_FREE_RATIO}% free.
 *
 * <p>A flag given on the command line ({@code -XX:MaxHeapFreeRatio=…}) is never overridden, and
 * {@code -Dwsguard.heapReturn=false} leaves every one at the JVM's default.
 */
public final class HeapReturn {

    static final long PERIODIC_GC_INTERVAL_MS = 10_000;
    static final int MIN_HEAP_FREE_RATIO = 10;
    static final int MAX_HEAP_FREE_RATIO = 20;

    private HeapReturn() {}

    /** Applies the flags the operator left at their defaults; returns them as {@code NAME=VALUE}. */
    public static List<String> apply() {
        final List<String> applied = new ArrayList<>();
        if (!Boolean.parseBoolean(System.getProperty("wsguard.heapReturn", "true"))) {
            return applied;
        }
        final HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        if (hotSpot == null) {
            return applied;
        }
        // The minimum first: the JVM refuses a maximum below the current minimum (40 by default).
        setIfDefault(hotSpot, "MinHeapFreeRatio", Integer.toString(MIN_HEAP_FREE_RATIO), applied);
        setIfDefault(hotSpot, "MaxHeapFreeRatio", Integer.toString(MAX_HEAP_FREE_RATIO), applied);
        if (usesG1()) {
            setIfDefault(hotSpot, "G1PeriodicGCInterval", Long.toString(PERIODIC_GC_INTERVAL_MS), applied);
        }
        return applied;
    }

    private static void setIfDefault(HotSpotDiagnosticMXBean hotSpot, String name, String value, List<String> applied) {
        final VMOption option;
        try {
            option = hotSpot.getVMOption(name);
        } catch (IllegalArgumentException absent) {
            return; // another JVM than HotSpot, or a version without this flag
        }
        if (option.getOrigin() != VMOption.Origin.DEFAULT || !option.isWriteable()) {
            return;
        }
        try {
            hotSpot.setVMOption(name, value);
            applied.add(name + "=" + value);
        } catch (IllegalArgumentException refused) {
            // e.g. a maximum below a minimum the operator set higher: their setting stands
        }
    }

    private static boolean usesG1() {
        for (GarbageCollectorMXBean collector : ManagementFactory.getGarbageCollectorMXBeans()) {
            if (collector.getName().startsWith("G1 ")) {
                return true;
            }
        }
        return false;
    }
}
