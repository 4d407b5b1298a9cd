package io.wsguard.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * Reads the summary {@code strace -c -f} writes (its {@code -o} file) and prints one line: the
 * syscalls per relayed message, in all and the most frequent ones, for run.sh's {@code STRACE=1} leg.
 * Only counts: strace slows every syscall it sees, so its times say nothing about the proxy untraced.
 */
final class SyscallCounts {

    /** How many of the most frequent syscalls the line names. */
    private static final int TOP = 4;

    /** One row of the summary table. */
    record Syscall(String name, long calls) {}

    private SyscallCounts() {}

    /**
     * The rows of the table, without the total: each row is {@code % time, seconds, usecs/call, calls,
     * [errors], syscall}, so the calls are the fourth field and the name the last. The total is summed
     * from the rows, as older strace versions leave fields out of the total line.
     */
    static List<Syscall> parse(List<String> lines) {
        final List<Syscall> rows = new ArrayList<>();
        for (String line : lines) {
            final String[] f = line.strip().split("\\s+", -1);
            if (f.length < 5 || !Character.isDigit(f[0].charAt(0)) || f[f.length - 1].equals("total")) {
                continue; // the header, the dashed rules, the total, and strace's own messages
            }
            rows.add(new Syscall(f[f.length - 1], Long.parseLong(f[3])));
        }
        rows.sort(Comparator.comparingLong(Syscall::calls).reversed().thenComparing(Syscall::name));
        return rows;
    }

    /** {@code nginx  3.06  recvfrom 1.01 sendto 1.00 epoll_wait 0.55 ...}: per relayed message. */
    static String line(String leg, List<Syscall> rows, long echoes) {
        // One echo is two relayed messages: client→upstream and upstream→client.
        final double messages = 2.0 * echoes;
        final long total = rows.stream().mapToLong(Syscall::calls).sum();
        final String calls = String.format(Locale.ROOT, "(%,d calls)", total);
        final StringBuilder line =
                new StringBuilder(String.format(Locale.ROOT, "  %-10s %6.2f  %-16s", leg, total / messages, calls));
        for (int i = 0; i < Math.min(TOP, rows.size()); i++) {
            line.append(String.format(
                    Locale.ROOT, " %s %.2f", rows.get(i).name(), rows.get(i).calls() / messages));
        }
        return line.toString();
    }

    /** {@code syscalls --leg L --trace FILE --echoes N}: prints the leg's line; exit 1 if the file holds no table. */
    static int print(Args args) throws IOException {
        final String leg = args.string("leg", "?");
        final Path trace = Path.of(args.string("trace", "strace.txt"));
        final long echoes = args.number("echoes", 0);
        if (echoes <= 0) {
            throw new IllegalArgumentException("--echoes: the echoes the trace covers, more than 0");
        }
        final List<Syscall> rows = parse(Files.readAllLines(trace));
        if (rows.isEmpty()) {
            System.out.printf(Locale.ROOT, "  %-10s no syscall table in %s%n", leg, trace);
            return 1;
        }
        System.out.println(line(leg, rows, echoes));
        return 0;
    }
}
