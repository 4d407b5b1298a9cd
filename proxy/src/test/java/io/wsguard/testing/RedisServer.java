package io.wsguard.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code redis-server} on a free loopback port, without persistence, for tests. It can be
 * killed and started again on the same port (an outage). Fails, never skips, when redis-server is
 * not installed: the shared rate limits are not tested otherwise.
 *
 * <p>Before {@link #start()}: {@link #password} ({@code --requirepass}), {@link #tls} (a TLS port
 * beside the plain one, which {@link #command} keeps using), and {@link #withArgs} for anything else
 * ({@link RedisClusterNodes} and {@link RedisSentinelGroup} build on it). {@link #pause()} stops the
 * process (SIGSTOP) so that it hangs with its sockets open, as a stuck Redis does.
 */
public final class RedisServer implements AutoCloseable {

    private final int port;
    private final Path log;
    private final List<String> extraArgs = new ArrayList<>();
    private String password;
    private int tlsPort;
    private Process process;

    private RedisServer(int port, Path log) {
        this.port = port;
        this.log = log;
    }

    /** A free port with nothing listening on it yet: {@link #start()} starts Redis there. */
    public static RedisServer onFreePort(Path dir) throws IOException {
        // redis-server cannot bind port 0: take a free port from the OS, then let it go.
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return new RedisServer(socket.getLocalPort(), dir.resolve("redis-" + socket.getLocalPort() + ".log"));
        }
    }

    /** More {@code redis-server} arguments, e.g. {@code "--cluster-enabled", "yes"}; before {@link #start()}. */
    public RedisServer withArgs(String... args) {
        extraArgs.addAll(List.of(args));
        return this;
    }

    /** Requires {@code AUTH password} of every client ({@code --requirepass}); {@link #command} sends it. */
    public RedisServer password(String value) {
        this.password = value;
        return withArgs("--requirepass", value, "--masterauth", value);
    }

    /**
     * Also serves TLS on a second free port ({@link #tlsUri()}) with this PEM certificate and key;
     * clients need not show a certificate. The plain port stays for {@link #command}.
     */
    public RedisServer tls(Path certificate, Path privateKey, Path ca) throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            tlsPort = socket.getLocalPort();
        }
        return withArgs(
                "--tls-port",
                Integer.toString(tlsPort),
                "--tls-cert-file",
                certificate.toString(),
                "--tls-key-file",
                privateKey.toString(),
                "--tls-ca-cert-file",
                ca.toString(),
                "--tls-auth-clients",
                "no");
    }

    /** Starts Redis and waits until it answers PING. */
    public RedisServer start() throws Exception {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("already running");
        }
        final List<String> args = new ArrayList<>(List.of(
                "redis-server",
                "--port",
                Integer.toString(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no"));
        args.addAll(extraArgs);
        try {
            process = new ProcessBuilder(args)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .start();
        } catch (IOException e) {
            throw new AssertionError(
                    "redis-server is needed by the shared rate-limit tests and could not be started"
                            + " (install it: apt-get install redis-server): " + e.getMessage(),
                    e);
        }
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try {
                if (List.of("PONG").equals(command("PING"))) {
                    return this;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            if (!process.isAlive() || System.nanoTime() - deadline > 0) {
                throw new AssertionError("redis-server did not answer PING on port " + port + "; see " + log);
            }
            Thread.sleep(20);
        }
    }

    /** Kills Redis at once (SIGKILL), as a crash would. */
    public void kill() throws InterruptedException {
        if (process != null) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * Stops the process (SIGSTOP): it keeps its sockets, accepts nothing and answers nothing, as a
     * Redis stuck in a long command or a swapped-out host does. {@link #resume()} continues it.
     */
    public void pause() throws Exception {
        signal("-STOP");
    }

    /** Continues a {@link #pause()}d process (SIGCONT). */
    public void resume() throws Exception {
        signal("-CONT");
    }

    private void signal(String signal) throws Exception {
        final Process kill = new ProcessBuilder("kill", signal, Long.toString(process.pid()))
                .redirectErrorStream(true)
                .start();
        if (!kill.waitFor(5, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            throw new AssertionError("kill " + signal + " " + process.pid() + " failed");
        }
    }

    public int port() {
        return port;
    }

    public String uri() {
        return "redis://127.0.0.1:" + port;
    }

    /** The TLS port's URI ({@code rediss://}); after {@link #tls}. */
    public String tlsUri() {
        if (tlsPort == 0) {
            throw new IllegalStateException("no TLS port: call tls(...) before start()");
        }
        return "rediss://127.0.0.1:" + tlsPort;
    }

    /** Where redis-server writes its log. */
    public Path log() {
        return log;
    }

    /**
     * Sends one inline command and returns the reply: a status or integer as one element, a bulk
     * string as one, an array as its elements.
     */
    public List<String> command(String command) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1000);
            socket.setSoTimeout(2000);
            final OutputStream out = socket.getOutputStream();
            final BufferedReader in =
                    new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            if (password != null) {
                out.write(("AUTH " + password + "\r\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
                final String auth = in.readLine();
                if (!"+OK".equals(auth)) {
                    throw new IOException("AUTH refused: " + auth);
                }
            }
            out.write((command + "\r\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            final String first = in.readLine();
            if (first == null) {
                throw new IOException("no reply");
            }
            final List<String> reply = new ArrayList<>();
            switch (first.charAt(0)) {
                case '+', ':', '-' -> reply.add(first.substring(1));
                case '$' -> {
                    if (!first.equals("$-1")) {
                        reply.add(in.readLine());
                    }
                }
                case '*' -> {
                    final int n = Integer.parseInt(first.substring(1));
                    for (int i = 0; i < n; i++) {
                        in.readLine(); // $length
                        reply.add(in.readLine());
                    }
                }
                default -> throw new IOException("unexpected reply: " + first);
            }
            return reply;
        }
    }

    @Override
    public void close() throws InterruptedException {
        kill();
    }
}
