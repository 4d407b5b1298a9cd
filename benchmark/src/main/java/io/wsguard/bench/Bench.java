package io.wsguard.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import org.HdrHistogram.Histogram;

/**
 * The benchmark's command line. {@code benchmark/run.sh} starts the processes and calls it once per
 * leg and scenario; each call appends one result line to a TSV file, and {@code report} prints the
 * table with ratios at the end.
 *
 * <pre>
 * load   --leg L --scenario S --url U [--pids P,P] --conns N --size B --window W
 *        [--warmup s] [--duration s] [--messages M] [--text]
 *        [--json [--min-size 64] [--max-size 1024] [--seed 42] [--pool 4096]]
 *        (--json: JSON chat text messages, echoes checked)
 *        [--echoes N [--sync DIR]]   (exactly N echoes in all, then stop: for counting, not timing)
 * rate   --leg L --scenario S --url U --ref-url DIRECT [--pids P] --conns N --size B --rate R
 *        [--warmup s] [--duration s]
 * idle   --leg L --scenario S --url wss://… --pids P --conns N [--hold s] [--warm-conns N --settle s]
 * mint   --key KEY.pem --count N --tokens FILE [--iss I] [--aud A] [--ttl-hours H]
 * report --out FILE
 * syscalls --leg L --trace STRACE_C_OUTPUT --echoes N   (one line: syscalls per relayed message)
 * echo   --port 19000            (same as io.wsguard.bench.EchoUpstream)
 * tunnel --port 38080 --upstream-port 19000   (io.wsguard.bench.TcpTunnel: the JVM's floor, a byte tunnel)
 * crypto [--rounds 3]   (the JVM's cost of a TLS handshake's public-key operations; compare openssl speed)
 * </pre>
 * Common: {@code --out FILE} (results TSV), {@code --clk-tck 100} ({@code getconf CLK_TCK}).
 */
public final class Bench {

    private Bench() {}

    /** Runs one command; exit 2 on bad usage, 1 when the target could not be measured at all. */
    public static void main(String[] argv) throws Exception {
        if (argv.length == 0) {
            System.err.println("usage: Bench load|rate|idle|report|syscalls|echo|tunnel|crypto --name value …"
                    + " (see benchmark/README.md)");
            System.exit(2);
        }
        final String command = argv[0];
        final String[] rest = java.util.Arrays.copyOfRange(argv, 1, argv.length);
        int exit;
        try {
            final Args args = Args.parse(rest);
            exit = switch (command) {
                case "load" -> load(args);
                case "rate" -> rate(args);
                case "idle" -> idle(args);
                case "mint" -> mint(args);
                case "report" -> Report.print(Path.of(args.string("out", "results.tsv")));
                case "syscalls" -> SyscallCounts.print(args);
                case "echo" -> {
                    EchoUpstream.main(rest);
                    yield 0;
                }
                case "tunnel" -> {
                    TcpTunnel.main(rest);
                    yield 0;
                }
                case "crypto" -> {
                    CryptoCost.print(args);
                    yield 0;
                }
                default ->
                    throw new IllegalArgumentException("unknown command '" + command
                            + "' (expected: load, rate, idle, mint, report, syscalls, echo, tunnel, crypto)");
            };
        } catch (IllegalArgumentException e) {
            System.err.println("bench: " + e.getMessage());
            exit = 2;
        }
        System.exit(exit);
    }

    private static int load(Args args) throws Exception {
        final Target t = Target.from(args);
        final int window = args.integer("window", 1);
        final int size = args.integer("size", 64);
        final boolean text = args.has("text");
        // JSON mode: the pool is generated before any connection opens, so generating is not measured.
        final String[] pool = args.has("json")
                ? JsonMessages.generate(
                        args.number("seed", 42), args.integer("pool", 4096),
                        args.integer("min-size", 64), args.integer("max-size", 1024))
                : null;
        try (LoadClient client = new LoadClient(t.conns)) {
            if (pool != null) {
                client.useMessages(pool);
            }
            final LoadClient.OpenResult open = client.open(
                    t.uri, t.conns, args.integer("concurrency", 64), window, size, text, Duration.ofSeconds(60));
            if (open.opened() == 0) {
                return t.fail(open);
            }
            final long echoes = args.number("echoes", 0);
            if (echoes > 0) {
                return counted(t, client, open, window, echoes, args.string("sync", null));
            }
            final ProcStats.Cpu[] cpu = new ProcStats.Cpu[2];
            final LoadClient.RunResult run = client.runWindowed(
                    window,
                    args.number("messages", 0),
                    t.warmup,
                    t.duration,
                    () -> cpu[0] = t.cpu(),
                    () -> cpu[1] = t.cpu());
            String note = window + " in flight";
            if (pool != null) {
                note += checkedEchoes(t, client, pool, args);
            }
            t.write(open, run, t.perRelayedMessage(cpu[0], cpu[1], run.echoes()), Double.NaN, Double.NaN, note);
        }
        return 0;
    }

    /**
     * {@code --echoes N}: exactly N echoes in all, then stop, for what a fixed amount of traffic costs
     * (run.sh's {@code STRACE=1} leg counts the proxy's syscalls over it). With {@code --sync DIR} the
     * client and whoever observes the proxy take turns through files in DIR: the client creates
     * {@code opened} once its connections are open and waits for {@code go}; after the last echo it
     * creates {@code done} and waits for {@code close} before it closes its connections. So neither the
     * handshakes nor the closes fall inside the observed interval. The row gets no CPU figure: an
     * observed proxy is a slowed one.
     */
    private static int counted(
            Target t, LoadClient client, LoadClient.OpenResult open, int window, long echoes, String sync)
            throws Exception {
        final Path dir = sync == null ? null : Path.of(sync);
        if (dir != null) {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("opened"), open.opened() + "\n", StandardCharsets.US_ASCII);
            awaitFile(dir.resolve("go"), Duration.ofMinutes(2));
        }
        final LoadClient.RunResult run = client.runEchoes(window, echoes, Duration.ofMinutes(5));
        if (dir != null) {
            Files.writeString(dir.resolve("done"), run.echoes() + "\n", StandardCharsets.US_ASCII);
            awaitFile(dir.resolve("close"), Duration.ofMinutes(2));
        }
        final boolean exact = run.echoes() == echoes;
        t.write(
                open,
                run,
                CpuPerMessage.NONE,
                Double.NaN,
                Double.NaN,
                String.format(
                        Locale.ROOT,
                        "%d in flight; %d of %d echoes%s",
                        window,
                        run.echoes(),
                        echoes,
                        exact ? "" : " (INCOMPLETE: timed out)"));
        if (!exact) {
            System.err.println(t.leg + " " + t.scenario + ": " + run.echoes() + " of " + echoes + " echoes");
        }
        return exact ? 0 : 1;
    }

    private static void awaitFile(Path file, Duration timeout) throws InterruptedException {
        final long end = System.nanoTime() + timeout.toNanos();
        while (!Files.exists(file)) {
            if (System.nanoTime() > end) {
                throw new IllegalStateException("no " + file + " within " + timeout.toSeconds() + " s");
            }
            Thread.sleep(1);
        }
    }

    /**
     * JSON mode's part of the note: what was sent and how many echoes were checked. Any echo that
     * differed, and any connection the other side closed, is written in capitals ({@code ECHO MISMATCH},
     * {@code CLOSED BY PEER}) into the note and to stderr: the report and run.sh look for those words.
     * Read after the drain, so every echo of the run (warm-up included) has been compared.
     */
    private static String checkedEchoes(Target t, LoadClient client, String[] pool, Args args) {
        String note = String.format(
                Locale.ROOT,
                "; json %d-%d B (mean %.0f), seed %d; %d echoes identical",
                args.integer("min-size", 64),
                args.integer("max-size", 1024),
                JsonMessages.meanSize(pool),
                args.number("seed", 42),
                client.verified());
        if (client.mismatches() > 0) {
            final String problem = client.mismatches() + " ECHO MISMATCHES (first: " + client.firstMismatch() + ")";
            System.err.println("!!! " + t.leg + " " + t.scenario + ": " + problem);
            note += "; " + problem;
        }
        if (client.peerCloses() > 0) {
            final String problem =
                    client.peerCloses() + " connections CLOSED BY PEER (first: " + client.firstPeerClose() + ")";
            System.err.println("!!! " + t.leg + " " + t.scenario + ": " + problem);
            note += "; " + problem;
        }
        return note;
    }

    private static int rate(Args args) throws Exception {
        final Target t = Target.from(args);
        final double rate = args.decimal("rate", 1000);
        final int size = args.integer("size", 64);
        final boolean text = args.has("text");
        // The reference run goes straight to the upstream at the same rate, just before: "added
        // latency" is the difference between the two p99s, measured seconds apart.
        final String refUrl = args.string("ref-url", null);
        double refP99 = Double.NaN;
        if (refUrl != null) {
            try (LoadClient client = new LoadClient(t.conns)) {
                final LoadClient.OpenResult open =
                        client.open(URI.create(refUrl), t.conns, 64, 4096, size, text, Duration.ofSeconds(60));
                final LoadClient.RunResult run = client.runPaced(rate, t.warmup, t.duration, () -> {}, () -> {});
                refP99 = run.histogram().getValueAtPercentile(99) / 1000.0;
                // d-ws-half-rate#2 → d-ws-half-rate@wsguard#2: the round stays last, where the report looks for it.
                final int round = t.scenario.indexOf('#');
                final String refScenario = round < 0
                        ? t.scenario + "@" + t.leg
                        : t.scenario.substring(0, round) + "@" + t.leg + t.scenario.substring(round);
                t.writeAs(
                        "direct",
                        refScenario,
                        open,
                        run,
                        CpuPerMessage.NONE,
                        Double.NaN,
                        0,
                        String.format(Locale.ROOT, "paced %.0f/s", rate));
            }
        }
        try (LoadClient client = new LoadClient(t.conns)) {
            final LoadClient.OpenResult open =
                    client.open(t.uri, t.conns, 64, 4096, size, text, Duration.ofSeconds(60));
            if (open.opened() == 0) {
                return t.fail(open);
            }
            final ProcStats.Cpu[] cpu = new ProcStats.Cpu[2];
            final LoadClient.RunResult run =
                    client.runPaced(rate, t.warmup, t.duration, () -> cpu[0] = t.cpu(), () -> cpu[1] = t.cpu());
            final double p99 = run.histogram().getValueAtPercentile(99) / 1000.0;
            t.write(
                    open,
                    run,
                    t.perRelayedMessage(cpu[0], cpu[1], run.echoes()),
                    Double.NaN,
                    Double.isNaN(refP99) ? Double.NaN : p99 - refP99,
                    String.format(Locale.ROOT, "paced %.0f/s", rate));
        }
        return 0;
    }

    private static int idle(Args args) throws Exception {
        final Target t = Target.from(args);
        final Duration hold = Duration.ofSeconds(args.number("hold", 3));
        final int warmConns = args.integer("warm-conns", 0);
        final Duration settle = Duration.ofSeconds(args.number("settle", 0));
        final int concurrency = args.integer("concurrency", 64);
        final long fresh = t.stats.isEmpty() ? 0 : t.stats.rssKiB();
        if (warmConns > 0) {
            // The proxy's one-time costs (compiled handshake code, grown thread pool) are not per
            // connection: open and close a burst first, and let the process settle, before the baseline.
            try (LoadClient warm = new LoadClient(warmConns)) {
                warm.open(t.uri, warmConns, concurrency, 1, 1, false, Duration.ofMinutes(2));
            }
            Thread.sleep(settle.toMillis());
        }
        try (LoadClient client = new LoadClient(t.conns)) {
            final long before = t.stats.isEmpty() ? 0 : t.stats.rssKiB();
            final LoadClient.OpenResult open =
                    client.open(t.uri, t.conns, concurrency, 1, 1, false, Duration.ofMinutes(2));
            if (open.opened() == 0) {
                return t.fail(open);
            }
            final long opened = t.stats.isEmpty() ? 0 : t.stats.rssKiB();
            // Hold the connections idle: what the proxy keeps per connection, not what the burst of
            // handshakes needed for a moment (a JVM returns that heap only after a collection).
            Thread.sleep(hold.toMillis());
            final int stillOpen = client.openCount();
            final long after = t.stats.isEmpty() ? 0 : t.stats.rssKiB();
            final double perConn = t.stats.isEmpty() ? Double.NaN : (after - before) / (double) stillOpen;
            final LoadClient.RunResult none = new LoadClient.RunResult(0, 0, null, 0, 0);
            t.write(
                    open,
                    none,
                    CpuPerMessage.NONE,
                    perConn,
                    Double.NaN,
                    String.format(
                            Locale.ROOT,
                            "%d of %d held %ds%s; RSS %d→%d KiB; per conn %.1f KiB right after opening%s",
                            stillOpen,
                            t.conns,
                            hold.toSeconds(),
                            warmConns > 0
                                    ? String.format(
                                            Locale.ROOT,
                                            " after a warm-up of %d, settled %ds",
                                            warmConns,
                                            settle.toSeconds())
                                    : "",
                            before,
                            after,
                            t.stats.isEmpty() ? Double.NaN : (opened - before) / (double) open.opened(),
                            warmConns > 0 && !t.stats.isEmpty()
                                    ? String.format(
                                            Locale.ROOT,
                                            ", %.1f KiB counting the warm-up's growth (RSS %d KiB before it)",
                                            (after - fresh) / (double) stillOpen,
                                            fresh)
                                    : ""));
        }
        return 0;
    }

    /**
     * Mints {@code --count} distinct RS256 tokens (each its own {@code sub} and {@code jti}) with the
     * proxy's own minter, one per line, on all cores, for scenario f ({@code benchmark/hsload.py}): the
     * handshakes must not pay for signing while they run.
     */
    private static int mint(Args args) throws Exception {
        final Path key = Path.of(args.string("key", "jwt.key"));
        final int count = args.integer("count", 1000);
        final String issuer = args.string("iss", "bench");
        final String audience = args.string("aud", "bench");
        final Duration ttl = Duration.ofHours(args.number("ttl-hours", 2));
        final List<String> tokens = java.util.stream.IntStream.range(0, count)
                .parallel()
                .mapToObj(i -> io.wsguard.auth.TokenMinter.mint(
                        new io.wsguard.auth.TokenMinter.Options(
                                java.util.Optional.empty(),
                                java.util.Optional.of(key),
                                java.util.Optional.empty(),
                                java.util.Optional.empty(),
                                java.util.Optional.of("user-" + i),
                                java.util.Optional.of(issuer),
                                List.of(audience),
                                ttl,
                                java.util.Map.of(
                                        "jti", java.util.UUID.randomUUID().toString())),
                        java.time.Clock.systemUTC()))
                .toList();
        Files.write(Path.of(args.string("tokens", "tokens.txt")), tokens, StandardCharsets.US_ASCII);
        return 0;
    }

    /** The proxy's CPU µs per relayed message: user plus system (the report's {@code cpu}), and each apart. */
    record CpuPerMessage(double total, double user, double system) {
        static final CpuPerMessage NONE = new CpuPerMessage(Double.NaN, Double.NaN, Double.NaN);
    }

    /** The leg and scenario being measured, and where the result goes. */
    private record Target(
            String leg,
            String scenario,
            URI uri,
            int conns,
            ProcStats stats,
            Duration warmup,
            Duration duration,
            Path out) {

        static Target from(Args args) {
            final String url = args.string("url", null);
            if (url == null) {
                throw new IllegalArgumentException("--url: missing (expected: ws://… or wss://…)");
            }
            return new Target(
                    args.string("leg", "direct"),
                    args.string("scenario", "load"),
                    URI.create(url),
                    args.integer("conns", 1),
                    ProcStats.parse(args.string("pids", ""), args.number("clk-tck", 100)),
                    Duration.ofMillis((long) (args.decimal("warmup", 2) * 1000)),
                    Duration.ofMillis((long) (args.decimal("duration", 5) * 1000)),
                    Path.of(args.string("out", "results.tsv")));
        }

        ProcStats.Cpu cpu() {
            if (stats.isEmpty()) {
                return ProcStats.Cpu.ZERO;
            }
            try {
                return stats.cpu();
            } catch (IOException e) {
                throw new UncheckedIOException("reading /proc for " + leg, e);
            }
        }

        /** One echo round trip is two relayed messages: client→upstream and upstream→client. */
        CpuPerMessage perRelayedMessage(ProcStats.Cpu start, ProcStats.Cpu end, long echoes) {
            if (stats.isEmpty() || echoes == 0) {
                return CpuPerMessage.NONE;
            }
            final double messages = 2.0 * echoes;
            return new CpuPerMessage(
                    (end.totalMicros() - start.totalMicros()) / messages,
                    (end.userMicros() - start.userMicros()) / messages,
                    (end.systemMicros() - start.systemMicros()) / messages);
        }

        int fail(LoadClient.OpenResult open) throws IOException {
            System.err.println(leg + " " + scenario + ": no connection opened (" + open.firstFailure() + ")");
            append(String.join(
                    "\t",
                    leg,
                    scenario,
                    uri.getScheme(),
                    "0",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "failed: " + open.firstFailure()));
            return 1;
        }

        void write(
                LoadClient.OpenResult open,
                LoadClient.RunResult run,
                CpuPerMessage cpu,
                double rssPerConn,
                double addedP99,
                String note)
                throws IOException {
            writeAs(leg, scenario, open, run, cpu, rssPerConn, addedP99, note);
        }

        void writeAs(
                String asLeg,
                String asScenario,
                LoadClient.OpenResult open,
                LoadClient.RunResult run,
                CpuPerMessage cpu,
                double rssPerConn,
                double addedP99,
                String note)
                throws IOException {
            final Histogram h = run.histogram();
            String fullNote = note;
            if (open.failed() > 0) {
                fullNote += "; " + open.failed() + " handshakes failed: " + open.firstFailure();
            }
            if (run.errors() > 0) {
                fullNote += "; " + run.errors() + " errors";
            }
            if (run.overruns() > 0) {
                fullNote += "; " + run.overruns() + " sends skipped (saturated)";
            }
            // One line per row: whatever a peer sent back (a close reason, a mangled echo) must not break the TSV.
            fullNote = fullNote.replaceAll("[\\t\\r\\n]", " ");
            // User and system CPU come after the note: rows written before they existed still read the same.
            final String line = String.join(
                    "\t",
                    asLeg,
                    asScenario,
                    uri.getScheme(),
                    Integer.toString(open.opened()),
                    fmt(open.handshakesPerSecond()),
                    h == null ? "" : fmt(run.rate()),
                    h == null ? "" : fmt(h.getValueAtPercentile(50) / 1000.0),
                    h == null ? "" : fmt(h.getValueAtPercentile(99) / 1000.0),
                    h == null ? "" : fmt(h.getMaxValue() / 1000.0),
                    fmt(cpu.total()),
                    fmt(rssPerConn),
                    fmt(addedP99),
                    fullNote,
                    fmt(cpu.user()),
                    fmt(cpu.system()));
            append(line);
            System.out.println(line.replace('\t', ' '));
        }

        private void append(String line) throws IOException {
            Files.writeString(
                    out, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        }

        private static String fmt(double value) {
            return Double.isNaN(value) ? "" : String.format(Locale.ROOT, "%.2f", value);
        }
    }
}
