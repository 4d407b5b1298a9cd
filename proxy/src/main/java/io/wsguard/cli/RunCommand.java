package io.wsguard.cli;

import io.wsguard.policy.AuditPolicy;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyLoader;
import io.wsguard.policy.PolicyProblem;
import io.wsguard.server.HeapReturn;
import io.wsguard.server.ProxyServer;
import java.io.PrintWriter;
import java.net.BindException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code wsguard run -c FILE}: serves until SIGTERM or SIGINT, then drains (README, Admin port). Prints one
 * line per listener when ready, which scripts and tests wait for: on stdout, or on stderr with
 * {@code audit.sink: stdout}, whose stdout holds only audit lines.
 */
@Command(name = "run", description = "Start the proxy with a policy file.")
public final class RunCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(
            names = {"-c", "--config"},
            required = true,
            description = "The policy file.")
    Path config;

    @Option(names = "--debug", description = "Print stack traces of unexpected failures.")
    boolean debug;

    @Override
    public Integer call() throws Exception {
        final PrintWriter out = spec.commandLine().getOut();
        final PrintWriter err = spec.commandLine().getErr();
        final LoadedPolicy loaded;
        final ProxyServer server;
        try {
            loaded = PolicyLoader.load(config);
            server = new ProxyServer(loaded);
            server.start();
            HeapReturn.apply();
        } catch (PolicyException e) {
            for (PolicyProblem problem : e.problems()) {
                err.println(problem);
            }
            err.flush();
            return ExitCode.INVALID;
        } catch (Exception e) {
            err.println("wsguard: cannot start: " + describe(e));
            if (debug) {
                e.printStackTrace(err);
            }
            err.flush();
            return ExitCode.RUNTIME_FAILURE;
        }
        final Shutdown shutdown = new Shutdown(server::drainAndStop).install();
        Shutdown.onSignal("HUP", () -> new Thread(server::reload, "wsguard-reload").start());
        // With audit.sink: stdout, stdout carries the audit log's JSON lines and nothing else, so
        // that a collector can parse every line: the ready lines go to stderr, with the logs.
        final PrintWriter ready = loaded.policy().audit().sink() == AuditPolicy.Sink.STDOUT ? err : out;
        for (String url : server.listenerUrls()) {
            ready.println("wsguard: listening on " + url);
        }
        if (server.adminUrl() != null) {
            ready.println("wsguard: admin on " + server.adminUrl());
        }
        if (server.probesUrl() != null) {
            ready.println("wsguard: probes on " + server.probesUrl() + " (/healthz, /readyz, /metrics)");
        }
        ready.println("wsguard: audit log at " + server.auditLocation());
        ready.flush();
        shutdown.awaitAndDrain();
        return ExitCode.OK;
    }

    static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        if (root instanceof BindException) {
            return "address already in use (" + root.getMessage() + ")";
        }
        final String message = root.getMessage();
        return message == null ? root.getClass().getSimpleName() : message;
    }
}
