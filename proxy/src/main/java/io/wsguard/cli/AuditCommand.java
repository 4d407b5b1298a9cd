package io.wsguard.cli;

import io.wsguard.audit.AuditEvent;
import io.wsguard.audit.AuditReader;
import io.wsguard.audit.MacChain;
import io.wsguard.policy.Units;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code wsguard audit [FILE]} (README, CLI): reads an audit log. Exit 0 on success, 1 on a runtime
 * failure or a broken integrity chain, 2 on a usage error. Prints only through picocli's
 * {@code out} and {@code err} writers.
 */
@Command(
        name = "audit",
        mixinStandardHelpOptions = true,
        description = {
            "Reads an audit log: one line per event (or the raw JSON), a summary, a live tail, or a check",
            "of its integrity chain.",
            "",
            "--verify checks FILE alone, with the key in WSGUARD_AUDIT_KEY. A rotated file continues the",
            "chain of the file rotated before it (FILE.1 for FILE, FILE.3 for FILE.2): when that file is",
            "present its last line's mac and sequence number start the check; when it is gone, the chain",
            "must start at sequence number 0, or earlier lines are missing (exit 1). Lines written before",
            "wsguard numbered its chain carry none: there FILE's first line anchors the chain (its own mac",
            "is trusted) and every later line is checked.",
            "--expect-last N (and --expect-mac M) checks FILE's end against a head recorded elsewhere",
            "(GET /admin/audit/head): a chain that ends before N has lost its newest lines."
        })
public final class AuditCommand implements Callable<Integer> {

    static final String KEY_ENV = "WSGUARD_AUDIT_KEY";
    private static final Pattern ROTATED = Pattern.compile("(.*)\\.(\\d+)");

    @Spec
    private CommandSpec spec;

    @Parameters(
            index = "0",
            arity = "0..1",
            defaultValue = "logs/audit.jsonl",
            paramLabel = "FILE",
            description = "the audit log (default: ${DEFAULT-VALUE})")
    private Path file;

    @Option(
            names = "--since",
            paramLabel = "DURATION",
            converter = DurationConverter.class,
            description = "only events of the last DURATION, e.g. 250ms, 30s, 10m, 12h")
    private Duration since;

    @Option(
            names = "--event",
            paramLabel = "E",
            description = "only this event: blocked, modified, monitored, config, store or connection")
    private String event;

    @Option(names = "--reason", paramLabel = "R", description = "only this reason, e.g. origin_denied")
    private String reason;

    @Option(names = "--route", paramLabel = "R", description = "only this route")
    private String route;

    @Option(names = "--client", paramLabel = "IP", description = "only this client address")
    private String client;

    @Option(names = "--json", description = "print the matching lines as they are")
    private boolean json;

    @Option(names = "--summary", description = "count events by reason and route, and the top 10 clients and subjects")
    private boolean summary;

    @Option(names = "--follow", description = "keep printing new lines as they are written, across rotations")
    private boolean follow;

    @Option(names = "--verify", description = "check the integrity chain with the key in " + KEY_ENV)
    private boolean verify;

    @Option(
            names = "--expect-last",
            paramLabel = "N",
            description = "with --verify: the chain reached sequence number N when its head was recorded")
    private Long expectLast;

    @Option(
            names = "--expect-mac",
            paramLabel = "MAC",
            description = "with --expect-last: the mac recorded for sequence number N")
    private String expectMac;

    private final Function<String, String> env;
    private final Clock clock;
    private final Duration pollInterval;

    /** The command as {@code wsguard} runs it: the process environment and the system clock. */
    public AuditCommand() {
        this(System::getenv, Clock.systemUTC(), Duration.ofMillis(250));
    }

    AuditCommand(Function<String, String> env, Clock clock, Duration pollInterval) {
        this.env = env;
        this.clock = clock;
        this.pollInterval = pollInterval;
    }

    @Override
    public Integer call() {
        final PrintWriter out = spec.commandLine().getOut();
        final PrintWriter err = spec.commandLine().getErr();
        if ((summary ? 1 : 0) + (follow ? 1 : 0) + (verify ? 1 : 0) > 1 || (json && (summary || verify))) {
            err.println("audit: choose one of --summary, --follow and --verify (--json goes with listing or --follow)");
            return 2;
        }
        if ((expectLast != null && !verify)
                || (expectMac != null && expectLast == null)
                || (expectLast != null && expectLast < 0)) {
            err.println("audit: --expect-last N (N >= 0) goes with --verify, and --expect-mac with --expect-last");
            return 2;
        }
        if (event != null
                && Arrays.stream(AuditEvent.Kind.values())
                        .noneMatch(k -> k.code().equals(event))) {
            err.println("audit: --event: '" + event + "' is not an event (expected: one of "
                    + Arrays.stream(AuditEvent.Kind.values())
                            .map(AuditEvent.Kind::code)
                            .collect(Collectors.joining(", "))
                    + ")");
            return 2;
        }
        try {
            if (verify) {
                return verify(out, err);
            }
            final AuditReader.Filter filter = new AuditReader.Filter(
                    since == null ? null : Instant.now(clock).minus(since), event, reason, route, client);
            if (follow) {
                AuditReader.follow(file, pollInterval, new LinePrinter(filter, out, err));
                return 0;
            }
            final AuditReader.Summary counts = new AuditReader.Summary();
            final LinePrinter printer = new LinePrinter(filter, out, err);
            try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                for (String line; (line = reader.readLine()) != null; ) {
                    if (summary) {
                        final AuditReader.Entry entry = printer.parse(line);
                        if (entry != null && filter.test(entry)) {
                            counts.add(entry, filter);
                        }
                    } else {
                        printer.accept(line);
                    }
                }
            }
            if (summary) {
                counts.print(out);
            }
            out.flush();
            return 0;
        } catch (NoSuchFileException e) {
            err.println("audit: " + file + ": no such file");
            return 1;
        } catch (IOException | UncheckedIOException e) {
            err.println("audit: " + file + ": " + e.getMessage());
            return 1;
        }
    }

    private int verify(PrintWriter out, PrintWriter err) throws IOException {
        final String key = env.apply(KEY_ENV);
        if (key == null || key.isEmpty()) {
            err.println("audit: --verify needs the integrity key in " + KEY_ENV);
            return 2;
        }
        final byte[] keyBytes = key.getBytes(StandardCharsets.UTF_8);
        final long anchor = expectLast == null ? -1 : expectLast;
        final Path predecessor = predecessor(file);
        final String predecessorLast = Files.isRegularFile(predecessor) ? lastLine(predecessor) : null;
        final String prevMac = MacChain.macOf(predecessorLast);
        MacChain.Result result;
        if (prevMac != null) {
            final long prevSeq = MacChain.seqOf(predecessorLast);
            result = verifyFile(keyBytes, prevMac, prevSeq < 0 ? 0 : prevSeq + 1, anchor);
        } else {
            result = verifyFile(keyBytes, "", 0, anchor);
            if (!result.ok() && result.brokenLine() == 1 && MacChain.seqOf(result.line()) <= 0) {
                // No predecessor to continue from, and line 1 is no gap in the numbering: it may follow
                // a file rotated away that was written before the chain was numbered.
                result = verifyFile(keyBytes, null, 0, anchor);
                if (result.ok() || result.brokenLine() > 1) {
                    err.println("audit: note: line 1 does not start a chain and " + predecessor.getFileName()
                            + " is absent; line 1 taken as the chain's anchor");
                }
            }
        }
        if (!result.ok()) {
            out.println("broken chain at line " + result.brokenLine() + ": " + result.line());
            out.println("  " + result.problem());
            out.flush();
            return 1;
        }
        final String endProblem = endProblem(result);
        if (endProblem != null) {
            out.println("broken chain at its end: " + endProblem);
            out.flush();
            return 1;
        }
        out.println("OK (" + describe(result) + ")");
        out.flush();
        return 0;
    }

    /** What is wrong with the file's end against {@code --expect-last} and {@code --expect-mac}, or null. */
    private String endProblem(MacChain.Result result) {
        if (expectLast == null) {
            return null;
        }
        if (result.lastSeq() < 0) {
            return "no line carries a sequence number (written before wsguard numbered its chain), so --expect-last"
                    + " cannot be checked";
        }
        if (result.lastSeq() < expectLast) {
            return "the chain ends at sequence number " + result.lastSeq() + ", but reached " + expectLast
                    + " when its head was recorded: the newest " + (expectLast - result.lastSeq())
                    + " lines are missing";
        }
        if (expectMac == null) {
            return null;
        }
        if (result.anchorMac() == null) {
            return "sequence number " + expectLast + " is not in " + file.getFileName() + " (it starts at "
                    + result.firstSeq() + "): verify the rotated file that holds it";
        }
        if (!result.anchorMac().equals(expectMac.toLowerCase(Locale.ROOT))) {
            return "the line with sequence number " + expectLast + " has another mac than the one recorded:"
                    + " the chain was rewritten from there or before";
        }
        return null;
    }

    private static String describe(MacChain.Result result) {
        if (result.lines() == 0) {
            return "0 lines";
        }
        if (result.unsequenced() == result.lines()) {
            return result.lines() + " lines; they carry no sequence numbers, so lines cut from the start or the end"
                    + " cannot be told";
        }
        final String range = result.firstSeq() + " to " + result.lastSeq();
        if (result.unsequenced() == 0) {
            return result.lines() + " lines, sequence numbers " + range;
        }
        return result.lines() + " lines: " + result.unsequenced() + " without sequence numbers, then " + range;
    }

    /** Streams the file through the check: a log file may be hundreds of megabytes. */
    // MacChain.verify walks its Iterable once, so a one-shot one over the stream is what it needs.
    @SuppressWarnings("StreamToIterable")
    private MacChain.Result verifyFile(byte[] key, String prevMac, long firstSeq, long anchorSeq) throws IOException {
        try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8);
                Stream<String> lines = reader.lines()) {
            return MacChain.verify(lines::iterator, key, prevMac, firstSeq, anchorSeq);
        }
    }

    /** The file rotated just before {@code file}: {@code X.1} for {@code X}, {@code X.(n+1)} for {@code X.n}. */
    static Path predecessor(Path file) {
        final String name = file.getFileName().toString();
        final Matcher m = ROTATED.matcher(name);
        if (m.matches()) {
            return file.resolveSibling(m.group(1) + "." + (Long.parseLong(m.group(2)) + 1));
        }
        return file.resolveSibling(name + ".1");
    }

    private static String lastLine(Path file) throws IOException {
        String last = null;
        try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            for (String line; (line = reader.readLine()) != null; ) {
                if (!line.isEmpty()) {
                    last = line;
                }
            }
        }
        return last;
    }

    /** Prints matching lines, in the human form or raw; a line that is not an audit line is reported and skipped. */
    private final class LinePrinter implements Consumer<String> {
        private final AuditReader.Filter filter;
        private final PrintWriter out;
        private final PrintWriter err;
        private long number;

        LinePrinter(AuditReader.Filter filter, PrintWriter out, PrintWriter err) {
            this.filter = filter;
            this.out = out;
            this.err = err;
        }

        AuditReader.Entry parse(String line) {
            number++;
            if (line.isBlank()) {
                return null;
            }
            try {
                return AuditReader.parse(line);
            } catch (IllegalArgumentException e) {
                err.println("audit: " + file + ":" + number + ": skipped, " + e.getMessage());
                err.flush();
                return null;
            }
        }

        @Override
        public void accept(String line) {
            final AuditReader.Entry entry = parse(line);
            if (entry != null && filter.test(entry)) {
                out.println(json ? entry.raw() : AuditReader.human(entry));
                if (follow) {
                    out.flush();
                }
            }
        }
    }

    /** {@code --since 10m}: the policy file's duration units. */
    static final class DurationConverter implements ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            return Units.duration(value);
        }
    }
}
