package io.wsguard.testing;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code rsyslogd} (Debian's rsyslog, with rsyslog-openssl for TLS) in the foreground, with its
 * own configuration, work directory and pid file in a test directory. It listens on loopback: UDP
 * (imudp), TCP (imtcp, octet counting or LF framing) and, with {@link #tls}, TLS (imtcp with the
 * {@code ossl} driver). Every message received is written to {@link #messages()} as it came
 * ({@code %rawmsg%}: the whole RFC 5424 message without the framing), one per line.
 *
 * <p>TCP and TLS start on port 0 and rsyslog writes the ports it got ({@code listenPortFileName});
 * this version's imudp has no such option, so the UDP port is a free one taken from the OS. {@link
 * #stop()} and {@link #start()} again keep the ports, as a restarted server would. Fails, never
 * skips, when rsyslogd is not installed: the syslog sink is not tested otherwise.
 */
public final class Rsyslog implements AutoCloseable {

    private final Path dir;
    private final Path out;
    private final Path log;
    private Path ca;
    private Path certificate;
    private Path privateKey;
    private int udpPort;
    private int tcpPort;
    private int tlsPort;
    private Process process;

    private Rsyslog(Path dir) {
        this.dir = dir;
        this.out = dir.resolve("received.log");
        this.log = dir.resolve("rsyslogd.log");
    }

    /** An rsyslogd to be {@link #start()}ed, keeping its files in a new directory under {@code parent}. */
    public static Rsyslog in(Path parent) throws IOException {
        return new Rsyslog(Files.createTempDirectory(parent, "rsyslog"));
    }

    /** Also listens for TLS with this certificate and key; {@code ca} is what it trusts of clients (none needed). */
    public Rsyslog tls(Path caFile, Path certificateFile, Path privateKeyFile) {
        this.ca = caFile;
        this.certificate = certificateFile;
        this.privateKey = privateKeyFile;
        return this;
    }

    /** Starts rsyslogd and waits until its TCP port accepts connections. */
    public Rsyslog start() throws Exception {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("already running");
        }
        if (udpPort == 0) {
            try (DatagramSocket probe = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
                udpPort = probe.getLocalPort();
            }
        }
        final Path tcpPortFile = dir.resolve("tcp.port");
        final Path tlsPortFile = dir.resolve("tls.port");
        Files.deleteIfExists(tcpPortFile);
        Files.deleteIfExists(tlsPortFile);
        final StringBuilder conf = new StringBuilder()
                .append("global(workDirectory=\"")
                .append(dir)
                .append("\" maxMessageSize=\"64k\")\n")
                .append("module(load=\"imudp\")\n")
                .append("module(load=\"imtcp\")\n")
                .append("input(type=\"imudp\" address=\"127.0.0.1\" port=\"")
                .append(udpPort)
                .append("\")\n")
                .append("input(type=\"imtcp\" address=\"127.0.0.1\" port=\"")
                .append(tcpPort)
                .append("\" listenPortFileName=\"")
                .append(tcpPortFile)
                .append("\")\n");
        if (certificate != null) {
            conf.append("input(type=\"imtcp\" address=\"127.0.0.1\" port=\"")
                    .append(tlsPort)
                    .append("\" listenPortFileName=\"")
                    .append(tlsPortFile)
                    .append("\" streamDriver.name=\"ossl\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\"")
                    .append(" streamDriver.cAFile=\"")
                    .append(ca)
                    .append("\" streamDriver.certFile=\"")
                    .append(certificate)
                    .append("\" streamDriver.keyFile=\"")
                    .append(privateKey)
                    .append("\")\n");
        }
        // rawmsg: the message as received, framing removed. rsyslogd's own messages are left out.
        conf.append("template(name=\"raw\" type=\"list\") { property(name=\"rawmsg\") constant(value=\"\\n\") }\n")
                .append("if $inputname != \"rsyslogd\" then {\n")
                .append("  action(type=\"omfile\" file=\"")
                .append(out)
                .append("\" template=\"raw\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n")
                .append("}\n");
        final Path confFile = dir.resolve("rsyslog.conf");
        Files.writeString(confFile, conf, StandardCharsets.UTF_8);
        final Path pid = dir.resolve("rsyslogd.pid");
        Files.deleteIfExists(pid);
        final String binary = Files.isExecutable(Path.of("/usr/sbin/rsyslogd")) ? "/usr/sbin/rsyslogd" : "rsyslogd";
        try {
            process = new ProcessBuilder(binary, "-n", "-f", confFile.toString(), "-i", pid.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .start();
        } catch (IOException e) {
            throw new AssertionError(
                    "rsyslogd is needed by the syslog sink tests and could not be started"
                            + " (install it: apt-get install rsyslog rsyslog-openssl): " + e.getMessage(),
                    e);
        }
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            if (tcpPort == 0 && Files.exists(tcpPortFile)) {
                tcpPort = Integer.parseInt(Files.readString(tcpPortFile).strip());
            }
            if (certificate != null && tlsPort == 0 && Files.exists(tlsPortFile)) {
                tlsPort = Integer.parseInt(Files.readString(tlsPortFile).strip());
            }
            if (tcpPort != 0 && (certificate == null || tlsPort != 0) && accepts(tcpPort)) {
                return this;
            }
            if (!process.isAlive() || System.nanoTime() - deadline > 0) {
                throw new AssertionError("rsyslogd did not start; its output:\n" + Files.readString(log));
            }
            Thread.sleep(20);
        }
    }

    private static boolean accepts(int port) {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Stops rsyslogd (SIGTERM) and waits for it to exit; the ports stay for the next {@link #start()}. */
    public void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        }
    }

    public int udpPort() {
        return udpPort;
    }

    public int tcpPort() {
        return tcpPort;
    }

    public int tlsPort() {
        if (tlsPort == 0) {
            throw new IllegalStateException("no TLS input: call tls(...) before start()");
        }
        return tlsPort;
    }

    /** Every message received so far, as received (no framing), in order. */
    public List<String> messages() throws IOException {
        if (!Files.exists(out)) {
            return List.of();
        }
        final String text = Files.readString(out, StandardCharsets.UTF_8);
        final List<String> lines = new ArrayList<>();
        for (String line : text.split("\n", -1)) {
            if (!line.isEmpty()) {
                lines.add(line);
            }
        }
        // A line being written right now has no newline yet: leave it for the next read.
        if (!text.isEmpty() && !text.endsWith("\n") && !lines.isEmpty()) {
            lines.remove(lines.size() - 1);
        }
        return lines;
    }

    /** rsyslogd's own output, for failure messages. */
    public String log() throws IOException {
        return Files.exists(log) ? Files.readString(log) : "";
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }
}
