package io.wsguard.cli;

import io.wsguard.auth.TokenMinter;
import io.wsguard.demo.DemoUpstream;
import io.wsguard.demo.DevCerts;
import io.wsguard.policy.LoadedPolicy;
import io.wsguard.policy.PolicyException;
import io.wsguard.policy.PolicyLoader;
import io.wsguard.policy.PolicyProblem;
import io.wsguard.server.HeapReturn;
import io.wsguard.server.ProxyServer;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code wsguard demo}: makes dev certificates if missing, starts the demo chat room on
 * 127.0.0.1:9000 and the proxy with {@code policies/demo.yaml} in front of it, prints where to
 * look, then serves until SIGTERM or SIGINT and drains.
 */
@Command(name = "demo", description = "Run a demo chat room behind the proxy (policies/demo.yaml).")
public final class DemoCommand implements Callable<Integer> {

    static final String POLICY = "policies/demo.yaml";
    /** What policies/demo.yaml's auth.jwt expects. */
    static final String DEV_ISSUER = "wsguard-demo";

    static final String DEV_AUDIENCE = "demo-chat";
    static final String DEV_SUBJECT = "demo-user";
    static final Duration DEV_TOKEN_TTL = Duration.ofHours(12);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(
            names = "--root",
            paramLabel = "DIR",
            description = "The repository root (holds " + POLICY
                    + "). Default: the working directory or the nearest parent that has it.")
    Path root;

    @Option(names = "--debug", description = "Print stack traces of unexpected failures.")
    boolean debug;

    @Override
    public Integer call() throws Exception {
        final PrintWriter out = spec.commandLine().getOut();
        final PrintWriter err = spec.commandLine().getErr();
        final Path base = root != null
                ? root.toAbsolutePath().normalize()
                : findRoot(Path.of("").toAbsolutePath());
        if (base == null || !Files.isRegularFile(base.resolve(POLICY))) {
            err.println("wsguard demo: no " + POLICY + " in "
                    + (base != null ? base : "the working directory or its parents")
                    + " (run it from the wsguard repository, or pass --root DIR)");
            err.flush();
            return ExitCode.INVALID;
        }
        final Path certs = base.resolve("certs/dev");
        final DevCerts.JwtKeyPaths jwtKey;
        try {
            DevCerts.ensure(certs);
            jwtKey = DevCerts.ensureJwtKey(certs);
        } catch (RuntimeException e) {
            err.println("wsguard demo: cannot make dev certificates in " + certs + ": " + RunCommand.describe(e));
            err.flush();
            return ExitCode.RUNTIME_FAILURE;
        }

        final DemoUpstream upstream = new DemoUpstream(DemoUpstream.DEFAULT_PORT, line -> {
            out.println(line);
            out.flush();
        });
        try {
            upstream.start();
        } catch (Exception e) {
            err.println("wsguard demo: cannot start the chat room on 127.0.0.1:" + DemoUpstream.DEFAULT_PORT + ": "
                    + RunCommand.describe(e));
            err.flush();
            return ExitCode.RUNTIME_FAILURE;
        }

        final ProxyServer server;
        try {
            final LoadedPolicy loaded = PolicyLoader.load(base.resolve(POLICY));
            server = new ProxyServer(loaded);
            server.start();
            HeapReturn.apply();
        } catch (PolicyException e) {
            upstream.close();
            for (PolicyProblem problem : e.problems()) {
                err.println(problem);
            }
            err.flush();
            return ExitCode.INVALID;
        } catch (Exception e) {
            upstream.close();
            err.println("wsguard: cannot start: " + RunCommand.describe(e));
            if (debug) {
                e.printStackTrace(err);
            }
            err.flush();
            return ExitCode.RUNTIME_FAILURE;
        }

        final Shutdown shutdown = new Shutdown(() -> {
                    server.drainAndStop();
                    upstream.close();
                })
                .install();
        Shutdown.onSignal("HUP", () -> new Thread(server::reload, "wsguard-reload").start());

        final List<String> listeners = server.listenerUrls();
        for (String url : listeners) {
            out.println("wsguard: listening on " + url);
        }
        if (server.adminUrl() != null) {
            out.println("wsguard: admin on " + server.adminUrl());
        }
        out.println("wsguard: audit log at " + server.auditLocation());
        final String proxyUrl = "wss://localhost:" + server.port(0) + "/chat";
        out.println();
        out.println("wsguard demo: chat room (upstream) on ws://127.0.0.1:" + upstream.port() + "/chat");
        out.println("wsguard demo: proxy URL " + proxyUrl);
        // The demo policy's issuer and audience; the page sends the token as a "bearer.<jwt>" subprotocol.
        final TokenMinter.Options tokenOptions = new TokenMinter.Options(
                Optional.empty(),
                Optional.of(jwtKey.privateKey()),
                Optional.empty(),
                Optional.empty(),
                Optional.of(DEV_SUBJECT),
                Optional.of(DEV_ISSUER),
                List.of(DEV_AUDIENCE),
                DEV_TOKEN_TTL,
                Map.of());
        final String token = TokenMinter.mint(tokenOptions, Clock.systemUTC());
        out.println(
                "wsguard demo: dev token (sub " + DEV_SUBJECT + ", valid " + DEV_TOKEN_TTL.toHours() + "h): " + token);
        out.println("wsguard demo: more tokens: java -jar proxy/target/wsguard.jar token --key " + jwtKey.privateKey()
                + " --iss " + DEV_ISSUER + " --aud " + DEV_AUDIENCE + " --sub alice --ttl 15m");
        out.println("wsguard demo: open " + upstream.pageUrl() + "?ws=" + proxyUrl + "#token=" + token);
        out.println("wsguard demo: the browser must trust the dev certificate for wss: open https://localhost:"
                + server.port(0) + "/chat once and accept it (the proxy answers 426, that is expected), or import "
                + certs.resolve("ca.crt"));
        out.println("wsguard demo: Ctrl-C to stop");
        out.flush();
        shutdown.awaitAndDrain();
        return ExitCode.OK;
    }

    /** The nearest directory from {@code start} upward that holds {@code policies/demo.yaml}, or null. */
    static Path findRoot(Path start) {
        for (Path dir = start; dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve(POLICY))) {
                return dir;
            }
        }
        return null;
    }
}
