package io.wsguard.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Prints the results TSV as a table, with each proxy leg's ratios against the direct leg and
 * against NGINX, then checks the targets for wsguard. Every ratio comes from rows of the
 * same file, i.e. the same run on the same machine.
 */
final class Report {

    /** One result line; the column order is the one {@link Bench} writes. */
    private record Row(String leg, String scenario, String conns, String handshakes, double msgs, String p50,
                       double p99, String max, double cpu, double rss, double addedP99, String note) {

        static Row parse(String line) {
            final String[] f = line.split("\t", -1);
            return new Row(f[0], f[1], f[3], f[4], num(f[5]), f[6], num(f[7]), f[8], num(f[9]), num(f[10]),
                           num(f[11]), f.length > 12 ? f[12] : "");
        }

        /** A scenario-f row: handshakes only, no messages. */
        boolean isHandshakes() {
            return Double.isNaN(msgs) && Double.isNaN(rss) && !handshakes.isEmpty();
        }

        double hs() {
            return num(handshakes);
        }

        private static double num(String text) {
            return text.isEmpty() ? Double.NaN : Double.parseDouble(text);
        }
    }

    private Report() {
    }

    static int print(Path file) throws IOException {
        final List<Row> rows = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            if (!line.isBlank()) {
                rows.add(Row.parse(line));
            }
        }
        System.out.printf(Locale.ROOT, "%-15s %-22s %6s %9s %10s %8s %8s %8s %9s %8s  %-16s %-22s %s%n",
                          "leg", "scenario", "conns", "hs/s", "msgs/s", "p50 µs", "p99 µs", "max µs",
                          "cpu µs/m", "KiB/conn", "vs direct", "vs nginx", "note");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "%-15s %-22s %6s %9s %10s %8s %8s %8s %9s %8s  %-16s %-22s %s%n",
                              r.leg, r.scenario, r.conns, intOf(r.handshakes), fmt(r.msgs, 0), r.p50,
                              fmt(r.p99, 1), r.max, fmt(r.cpu, 2), fmt(r.rss, 1), vsDirect(rows, r),
                              vsNginx(rows, r), r.note);
        }
        System.out.println();
        final boolean problems = echoProblems(rows);
        targets(rows);
        return problems ? 3 : 0;
    }

    /**
     * Scenario g checks every echo: a mismatch or a connection closed by the other side means the
     * relay changed or refused what it should have passed, and every figure of that row is suspect.
     */
    private static boolean echoProblems(List<Row> rows) {
        boolean any = false;
        for (Row r : rows) {
            if (r.note.contains("ECHO MISMATCH") || r.note.contains("CLOSED BY PEER")) {
                if (!any) {
                    System.out.println("!!! ECHO CHECK FAILED: the relay changed or refused messages it should have passed unchanged");
                }
                any = true;
                System.out.println("!!!   " + r.leg + " " + r.scenario + ": " + r.note);
            }
        }
        if (any) {
            System.out.println();
        }
        return any;
    }

    private static String vsDirect(List<Row> rows, Row r) {
        if (r.leg.equals("direct")) {
            return "";
        }
        if (!Double.isNaN(r.addedP99)) {
            return String.format(Locale.ROOT, "p99 %+.0f µs", r.addedP99);
        }
        final Row direct = find(rows, "direct", r.scenario);
        if (r.isHandshakes()) {
            return direct == null ? "" : String.format(Locale.ROOT, "%.2fx hs", r.hs() / direct.hs());
        }
        return direct == null || Double.isNaN(r.msgs) || Double.isNaN(direct.msgs) ? "" : String.format(Locale.ROOT, "%.2fx msgs", r.msgs / direct.msgs);
    }

    private static String vsNginx(List<Row> rows, Row r) {
        if (r.leg.equals("direct") || r.leg.equals("nginx")) {
            return "";
        }
        final Row nginx = find(rows, "nginx", r.scenario);
        if (nginx == null || Double.isNaN(r.msgs) && Double.isNaN(r.rss) && !r.isHandshakes()) {
            return "";
        }
        if (!Double.isNaN(r.rss)) {
            return String.format(Locale.ROOT, "%.2fx RSS", r.rss / nginx.rss);
        }
        if (!Double.isNaN(r.addedP99)) {
            return String.format(Locale.ROOT, "p99 %.2fx", r.p99 / nginx.p99);
        }
        if (r.isHandshakes()) {
            return String.format(Locale.ROOT, "%.2fx hs %.2fx cpu", r.hs() / nginx.hs(), r.cpu / nginx.cpu);
        }
        return String.format(Locale.ROOT, "%.2fx msgs %.2fx cpu", r.msgs / nginx.msgs, r.cpu / nginx.cpu);
    }

    /** The targets, for wsguard against NGINX in this same run. */
    private static void targets(List<Row> rows) {
        final boolean wsguard = rows.stream().anyMatch(r -> r.leg.startsWith("wsguard"));
        if (!wsguard) {
            System.out.println("targets: not checked (no wsguard leg in this run)");
            return;
        }
        System.out.println("targets (wsguard, from this run):");
        for (Row r : rows) {
            if (r.leg.equals("wsguard-inspect")) {
                inspectTarget(rows, r);
                continue;
            }
            if (!r.leg.equals("wsguard")) {
                continue;
            }
            final Row nginx = find(rows, "nginx", r.scenario);
            if (!Double.isNaN(r.rss)) {
                verdict(r.scenario + " RSS/conn ≤ 30 KiB", r.rss <= 30, fmt(r.rss, 1) + " KiB (" + r.conns + " held)");
            } else if (!Double.isNaN(r.addedP99)) {
                verdict(r.scenario + " added p99 ≤ 1 ms", r.addedP99 <= 1000, fmt(r.addedP99, 0) + " µs");
            } else if (nginx == null) {
                System.out.println("  n/a   " + r.scenario + ": no NGINX row to compare with");
            } else if (r.isHandshakes()) {
                verdict(r.scenario + " hs/s ≥ 0.8x NGINX", r.hs() >= 0.8 * nginx.hs(),
                        String.format(Locale.ROOT, "%.0f vs %.0f (%.2fx)", r.hs(), nginx.hs(), r.hs() / nginx.hs()));
            } else {
                verdict(r.scenario + " msgs/s ≥ NGINX", r.msgs >= nginx.msgs,
                        fmt(r.msgs, 0) + " vs " + fmt(nginx.msgs, 0));
                verdict(r.scenario + " CPU/msg ≤ NGINX", r.cpu <= nginx.cpu,
                        fmt(r.cpu, 2) + " vs " + fmt(nginx.cpu, 2) + " µs");
            }
        }
    }

    /**
     * Scenario g: wsguard relaying through JSON schema, sanitization, a deny pattern and per-connection
     * message and byte limits ({@code /inspect}) against NGINX's plain relay, and against wsguard's own
     * plain relay ({@code /echo}, the {@code wsguard-plain} row), same scenario, same run.
     */
    private static void inspectTarget(List<Row> rows, Row r) {
        final Row nginx = find(rows, "nginx", r.scenario);
        final Row plain = find(rows, "wsguard-plain", r.scenario);
        final String what = r.scenario + " inspect ≥ 0.7x NGINX";
        if (Double.isNaN(r.msgs)) {
            System.out.printf(Locale.ROOT, "  %-5s %-36s wsguard-inspect %s%s%n", "n/a", what, r.note,
                              plain != null && nginx != null
                                      ? String.format(Locale.ROOT, " (wsguard-plain ÷ nginx: %.2fx msgs)", plain.msgs / nginx.msgs)
                                      : "");
            return;
        }
        if (nginx == null || Double.isNaN(nginx.msgs)) {
            System.out.println("  n/a   " + r.scenario + ": no NGINX row to compare wsguard-inspect with");
            return;
        }
        String figures = String.format(Locale.ROOT, "%.0f vs %.0f msgs/s: ÷ nginx %.2fx msgs %.2fx cpu",
                                       r.msgs, nginx.msgs, r.msgs / nginx.msgs, r.cpu / nginx.cpu);
        if (plain != null && !Double.isNaN(plain.msgs)) {
            figures += String.format(Locale.ROOT, "; ÷ wsguard-plain %.2fx msgs %.2fx cpu",
                                     r.msgs / plain.msgs, r.cpu / plain.cpu);
        }
        verdict(what, r.msgs >= 0.7 * nginx.msgs, figures);
    }

    private static void verdict(String what, boolean ok, String figures) {
        System.out.printf(Locale.ROOT, "  %-5s %-36s %s%n", ok ? "PASS" : "FAIL", what, figures);
    }

    private static Row find(List<Row> rows, String leg, String scenario) {
        for (Row r : rows) {
            if (r.leg.equals(leg) && r.scenario.equals(scenario)) {
                return r;
            }
        }
        return null;
    }

    private static String intOf(String text) {
        return text.isEmpty() ? "" : String.format(Locale.ROOT, "%.0f", Double.parseDouble(text));
    }

    private static String fmt(double value, int decimals) {
        return Double.isNaN(value) ? "" : String.format(Locale.ROOT, "%." + decimals + "f", value);
    }
}
