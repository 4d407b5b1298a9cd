package io.wsguard.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * Prints the results TSV as a table, with each proxy leg's ratios against the direct leg and
 * against NGINX, then checks the targets for wsguard. Every ratio comes from rows of the
 * same file, i.e. the same run on the same machine.
 *
 * <p>A scenario measured in several rounds ({@code run.sh}'s {@code ROUNDS}) has one row per leg and
 * round, named {@code SCENARIO#ROUND}. Its ratios are taken within a round, between legs measured
 * seconds apart, and the verdict is on their median: on a shared machine whose speed drifts by
 * tens of percent over minutes, one sequential pass per leg mostly measures the drift.
 */
final class Report {

    /** One result line; the column order is the one {@link Bench} writes. */
    private record Row(
            String leg,
            String scenario,
            String conns,
            String handshakes,
            double msgs,
            String p50,
            double p99,
            String max,
            double cpu,
            double rss,
            double addedP99,
            String note,
            double user,
            double system) {

        static Row parse(String line) {
            final String[] f = line.split("\t", -1);
            return new Row(
                    f[0],
                    f[1],
                    f[3],
                    f[4],
                    num(f[5]),
                    f[6],
                    num(f[7]),
                    f[8],
                    num(f[9]),
                    num(f[10]),
                    num(f[11]),
                    f.length > 12 ? f[12] : "",
                    // Appended after the note; rows from before they existed (and f's) have none.
                    f.length > 13 ? num(f[13]) : Double.NaN,
                    f.length > 14 ? num(f[14]) : Double.NaN);
        }

        /** A scenario-f row: handshakes only, no messages. */
        boolean isHandshakes() {
            return Double.isNaN(msgs) && Double.isNaN(rss) && !handshakes.isEmpty();
        }

        double hs() {
            return num(handshakes);
        }

        /** The scenario without its round. */
        String base() {
            final int hash = scenario.indexOf('#');
            return hash < 0 ? scenario : scenario.substring(0, hash);
        }

        private static double num(String text) {
            return text.isEmpty() ? Double.NaN : Double.parseDouble(text);
        }
    }

    private Report() {}

    static int print(Path file) throws IOException {
        final List<Row> rows = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            if (!line.isBlank()) {
                rows.add(Row.parse(line));
            }
        }
        System.out.printf(
                Locale.ROOT,
                "%-15s %-22s %6s %9s %10s %8s %8s %8s %9s %8s %8s %8s  %-16s %-22s %s%n",
                "leg",
                "scenario",
                "conns",
                "hs/s",
                "msgs/s",
                "p50 µs",
                "p99 µs",
                "max µs",
                "cpu µs/m",
                "usr µs/m",
                "sys µs/m",
                "KiB/conn",
                "vs direct",
                "vs nginx",
                "note");
        for (Row r : rows) {
            System.out.printf(
                    Locale.ROOT,
                    "%-15s %-22s %6s %9s %10s %8s %8s %8s %9s %8s %8s %8s  %-16s %-22s %s%n",
                    r.leg,
                    r.scenario,
                    r.conns,
                    intOf(r.handshakes),
                    fmt(r.msgs, 0),
                    r.p50,
                    fmt(r.p99, 1),
                    r.max,
                    fmt(r.cpu, 2),
                    fmt(r.user, 2),
                    fmt(r.system, 2),
                    fmt(r.rss, 1),
                    vsDirect(rows, r),
                    vsNginx(rows, r),
                    r.note);
        }
        System.out.println();
        medians(rows);
        final boolean problems = echoProblems(rows);
        targets(rows);
        pumpTargets(rows);
        return problems ? 3 : 0;
    }

    /** Per leg and scenario measured in more than one round: the medians, and each round's ratio to NGINX. */
    private static void medians(List<Row> rows) {
        final Set<String> seen = new HashSet<>();
        boolean header = false;
        for (Row r : rows) {
            final List<Row> rounds = rounds(rows, r.leg, r.base());
            if (rounds.size() < 2 || !seen.add(r.leg + "\t" + r.base())) {
                continue;
            }
            if (!header) {
                System.out.printf(
                        Locale.ROOT,
                        "medians over rounds:%n%-15s %-22s %6s %10s %9s %8s %8s  %-40s %s%n",
                        "leg",
                        "scenario",
                        "rounds",
                        "hs|msgs/s",
                        "cpu µs",
                        "usr µs",
                        "sys µs",
                        "÷ nginx (each round)",
                        "÷ nginx cpu");
                header = true;
            }
            final boolean hs = r.isHandshakes();
            final ToDoubleFunction<Row> rate = hs ? Row::hs : Row::msgs;
            final double[] vsNginx = perRound(rows, r.leg, r.base(), "nginx", rate);
            final double[] cpuVsNginx = perRound(rows, r.leg, r.base(), "nginx", Row::cpu);
            System.out.printf(
                    Locale.ROOT,
                    "%-15s %-22s %6d %10s %9s %8s %8s  %-40s %s%n",
                    r.leg,
                    r.base(),
                    rounds.size(),
                    fmt(median(values(rounds, rate)), 0),
                    fmt(median(values(rounds, Row::cpu)), 2),
                    fmt(median(values(rounds, Row::user)), 2),
                    fmt(median(values(rounds, Row::system)), 2),
                    ratios(vsNginx),
                    ratios(cpuVsNginx));
        }
        if (header) {
            System.out.println();
        }
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
                    System.out.println("!!! ECHO CHECK FAILED: the relay changed or "
                            + "refused messages it should have passed unchanged");
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
        return direct == null || Double.isNaN(r.msgs) || Double.isNaN(direct.msgs)
                ? ""
                : String.format(Locale.ROOT, "%.2fx msgs", r.msgs / direct.msgs);
    }

    private static String vsNginx(List<Row> rows, Row r) {
        if (r.leg.equals("direct") || r.leg.equals("nginx")) {
            return "";
        }
        final Row nginx = find(rows, "nginx", r.scenario);
        if (nginx == null || (Double.isNaN(r.msgs) && Double.isNaN(r.rss) && !r.isHandshakes())) {
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

    /** The targets, for wsguard against NGINX in this same run (medians over its rounds). */
    private static void targets(List<Row> rows) {
        final boolean wsguard = rows.stream().anyMatch(r -> r.leg.startsWith("wsguard"));
        if (!wsguard) {
            System.out.println("targets: not checked (no wsguard leg in this run)");
            return;
        }
        System.out.println("targets (wsguard, from this run):");
        final Set<String> seen = new HashSet<>();
        for (Row r : rows) {
            if (!(r.leg.equals("wsguard") || r.leg.equals("wsguard-inspect")) || !seen.add(r.leg + "\t" + r.base())) {
                continue;
            }
            final String base = r.base();
            final List<Row> mine = rounds(rows, r.leg, base);
            if (r.leg.equals("wsguard-inspect")) {
                inspectTarget(rows, base, mine);
            } else if (!Double.isNaN(r.rss)) {
                final double rss = median(values(mine, Row::rss));
                verdict(base + " RSS/conn ≤ 30 KiB", rss <= 30, fmt(rss, 1) + " KiB (" + r.conns + " held)");
            } else if (!Double.isNaN(r.addedP99)) {
                latencyTarget(rows, base, mine);
            } else if (rounds(rows, "nginx", base).isEmpty()) {
                System.out.println("  n/a   " + base + ": no NGINX row to compare with");
            } else if (r.isHandshakes()) {
                final double[] hs = perRound(rows, "wsguard", base, "nginx", Row::hs);
                verdict(
                        base + " hs/s ≥ 0.8x NGINX",
                        median(hs) >= 0.8,
                        figures(mine, rows, base, Row::hs, "hs/s") + ": " + ratios(hs));
            } else {
                final double[] msgs = perRound(rows, "wsguard", base, "nginx", Row::msgs);
                final double[] cpu = perRound(rows, "wsguard", base, "nginx", Row::cpu);
                verdict(
                        base + " msgs/s ≥ NGINX",
                        median(msgs) >= 1,
                        figures(mine, rows, base, Row::msgs, "msgs/s") + ": " + ratios(msgs));
                verdict(
                        base + " CPU/msg ≤ NGINX",
                        median(cpu) <= 1,
                        figures(mine, rows, base, Row::cpu, "µs") + ": " + ratios(cpu));
            }
        }
    }

    /** Issue 18's scenarios whose CPU per message and throughput are both judged against NGINX's. */
    private static final List<String> PUMP_SMALL =
            List.of("a-ws-64B", "a-wss-64B", "b-ws-64B-1conn", "b-wss-64B-1conn");

    /**
     * Issue 18's targets (the frame pump), for wsguard against NGINX in this same run, each on the
     * median of the per-round ratios: 64-byte messages at ≤ 1.2x NGINX's CPU per message and ≥ 0.95x
     * its throughput; 16 KiB over ws at ≤ 0.8x its CPU; idle wss connections at or below its RSS per
     * connection. The CPU lines add the user and system medians, so that the next bottleneck shows;
     * the tunnel's ratio (the JVM's floor) follows wherever the tunnel leg ran.
     */
    private static void pumpTargets(List<Row> rows) {
        if (rows.stream().noneMatch(r -> r.leg.equals("wsguard"))) {
            return;
        }
        System.out.println();
        System.out.println("targets of issue 18 (frame pump; wsguard ÷ NGINX, median of the rounds' ratios):");
        final List<String> missing = new ArrayList<>();
        for (String base : PUMP_SMALL) {
            if (!pumpComparable(rows, base, missing)) {
                continue;
            }
            pumpVerdict(rows, base, base + " CPU/msg ≤ 1.2x NGINX", Row::cpu, "µs", r -> r <= 1.2);
            pumpVerdict(rows, base, base + " msgs/s ≥ 0.95x NGINX", Row::msgs, "msgs/s", r -> r >= 0.95);
        }
        if (pumpComparable(rows, "c-ws-16KiB", missing)) {
            pumpVerdict(rows, "c-ws-16KiB", "c-ws-16KiB CPU/msg ≤ 0.8x NGINX", Row::cpu, "µs", r -> r <= 0.8);
        }
        if (pumpComparable(rows, "e-wss-idle", missing)) {
            pumpVerdict(rows, "e-wss-idle", "e-wss-idle RSS/conn ≤ NGINX", Row::rss, "KiB", r -> r <= 1);
        }
        if (!missing.isEmpty()) {
            System.out.println("  not in this run: " + String.join(", ", missing));
        }
    }

    /** Whether both wsguard and NGINX have rows for {@code base}; prints n/a or notes it missing if not. */
    private static boolean pumpComparable(List<Row> rows, String base, List<String> missing) {
        if (rounds(rows, "wsguard", base).isEmpty()) {
            missing.add(base);
            return false;
        }
        if (rounds(rows, "nginx", base).isEmpty()) {
            System.out.println("  n/a   " + base + ": no NGINX row to compare with");
            return false;
        }
        return true;
    }

    private static void pumpVerdict(
            List<Row> rows,
            String base,
            String what,
            ToDoubleFunction<Row> value,
            String unit,
            java.util.function.DoublePredicate target) {
        final double[] ratios = perRound(rows, "wsguard", base, "nginx", value);
        if (ratios.length == 0) {
            System.out.printf(
                    Locale.ROOT, "  %-5s %-36s no round measured both legs (see the rows' notes)%n", "n/a", what);
            return;
        }
        final List<Row> mine = rounds(rows, "wsguard", base);
        final List<Row> nginx = rounds(rows, "nginx", base);
        final int decimals = unit.equals("msgs/s") ? 0 : unit.equals("KiB") ? 1 : 2;
        String figures = (mine.size() > 1 ? "medians " : "")
                + fmt(median(values(mine, value)), decimals)
                + " vs "
                + fmt(median(values(nginx, value)), decimals)
                + " "
                + unit;
        if (unit.equals("µs")) {
            final double[] user = values(mine, Row::user);
            final double[] nginxUser = values(nginx, Row::user);
            if (user.length > 0 && nginxUser.length > 0) {
                figures += " (user " + fmt(median(user), 2) + " vs " + fmt(median(nginxUser), 2)
                        + ", system " + fmt(median(values(mine, Row::system)), 2) + " vs "
                        + fmt(median(values(nginx, Row::system)), 2) + ")";
            }
        }
        figures += ": " + ratios(ratios);
        final double[] tunnel = perRound(rows, "tunnel", base, "nginx", value);
        if (tunnel.length > 0) {
            figures += "; tunnel ÷ nginx " + ratios(tunnel);
        }
        verdict(what, target.test(median(ratios)), figures);
    }

    /**
     * Scenario d: the p99 wsguard adds at half its saturated rate, the median of the rounds. A
     * difference of 1 ms cannot be told when the direct path's own p99 at that rate is already
     * above it (a starved load client, a shared machine): then the verdict is n/a, not a pass or
     * a fail made of noise.
     */
    private static void latencyTarget(List<Row> rows, String base, List<Row> mine) {
        final String what = base + " added p99 ≤ 1 ms";
        final double added = median(values(mine, Row::addedP99));
        final double directP99 = median(values(rounds(rows, "direct", base + "@wsguard"), Row::p99));
        final String figures = fmt(added, 0) + " µs (each round: "
                + String.join(" ", mine.stream().map(m -> fmt(m.addedP99, 0)).toList()) + ")";
        if (directP99 > 1000) {
            System.out.printf(
                    Locale.ROOT,
                    "  %-5s %-36s %s; the direct path's own p99 at that rate is %s µs:"
                            + " this machine cannot resolve 1 ms%n",
                    "n/a",
                    what,
                    figures,
                    fmt(directP99, 0));
            return;
        }
        verdict(what, added <= 1000, figures + "; direct p99 " + fmt(directP99, 0) + " µs");
    }

    /**
     * Scenario g: wsguard relaying through JSON schema, sanitization, a deny pattern and per-connection
     * message and byte limits ({@code /inspect}) against NGINX's plain relay, and against wsguard's own
     * plain relay ({@code /echo}, the {@code wsguard-plain} row), same scenario, same round.
     */
    private static void inspectTarget(List<Row> rows, String base, List<Row> mine) {
        final String what = base + " inspect ≥ 0.7x NGINX";
        final double[] vsNginx = perRound(rows, "wsguard-inspect", base, "nginx", Row::msgs);
        if (vsNginx.length == 0) {
            final double[] plain = perRound(rows, "wsguard-plain", base, "nginx", Row::msgs);
            System.out.printf(
                    Locale.ROOT,
                    "  %-5s %-36s wsguard-inspect %s%s%n",
                    "n/a",
                    what,
                    mine.get(0).note,
                    plain.length > 0 ? " (wsguard-plain ÷ nginx: " + ratios(plain) + " msgs)" : "");
            return;
        }
        String figures = figures(mine, rows, base, Row::msgs, "msgs/s") + ": ÷ nginx " + ratios(vsNginx) + " msgs, "
                + ratios(perRound(rows, "wsguard-inspect", base, "nginx", Row::cpu)) + " cpu";
        final double[] vsPlain = perRound(rows, "wsguard-inspect", base, "wsguard-plain", Row::msgs);
        if (vsPlain.length > 0) {
            figures += "; ÷ wsguard-plain " + ratios(vsPlain) + " msgs, "
                    + ratios(perRound(rows, "wsguard-inspect", base, "wsguard-plain", Row::cpu)) + " cpu";
        }
        verdict(what, median(vsNginx) >= 0.7, figures);
    }

    /** "median A vs B UNIT" of the leg's rounds against NGINX's. */
    private static String figures(
            List<Row> mine, List<Row> rows, String base, ToDoubleFunction<Row> value, String unit) {
        final double ours = median(values(mine, value));
        final double theirs = median(values(rounds(rows, "nginx", base), value));
        final int decimals = unit.equals("µs") ? 2 : 0;
        return (mine.size() > 1 ? "medians " : "") + fmt(ours, decimals) + " vs " + fmt(theirs, decimals) + " " + unit;
    }

    private static void verdict(String what, boolean ok, String figures) {
        System.out.printf(Locale.ROOT, "  %-5s %-36s %s%n", ok ? "PASS" : "FAIL", what, figures);
    }

    /** Each round's ratio of {@code leg} to {@code vsLeg}, for the rounds both measured, in round order. */
    private static double[] perRound(
            List<Row> rows, String leg, String base, String vsLeg, ToDoubleFunction<Row> value) {
        final List<Double> ratios = new ArrayList<>();
        for (Row ours : rounds(rows, leg, base)) {
            final Row theirs = find(rows, vsLeg, ours.scenario);
            if (theirs != null) {
                final double ratio = value.applyAsDouble(ours) / value.applyAsDouble(theirs);
                if (!Double.isNaN(ratio) && !Double.isInfinite(ratio)) {
                    ratios.add(ratio);
                }
            }
        }
        return ratios.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** The rows of one leg for one scenario, a row per round, in the order they ran. */
    private static List<Row> rounds(List<Row> rows, String leg, String base) {
        return rows.stream()
                .filter(r -> r.leg.equals(leg) && r.base().equals(base))
                .toList();
    }

    private static double[] values(List<Row> rows, ToDoubleFunction<Row> value) {
        return rows.stream().mapToDouble(value).filter(v -> !Double.isNaN(v)).toArray();
    }

    /** NaN when there is nothing. */
    static double median(double[] values) {
        if (values.length == 0) {
            return Double.NaN;
        }
        final double[] sorted = values.clone();
        Arrays.sort(sorted);
        final int mid = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /** "0.85x" for one round; "0.85x (0.81 0.85 0.92)" for several: the median, then each round. */
    private static String ratios(double[] ratios) {
        if (ratios.length == 0) {
            return "";
        }
        final String median = String.format(Locale.ROOT, "%.2fx", median(ratios));
        if (ratios.length == 1) {
            return median;
        }
        final StringBuilder each = new StringBuilder(median).append(" (");
        for (int i = 0; i < ratios.length; i++) {
            each.append(i == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.2f", ratios[i]));
        }
        return each.append(')').toString();
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
