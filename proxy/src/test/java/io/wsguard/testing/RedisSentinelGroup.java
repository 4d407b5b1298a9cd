package io.wsguard.testing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis Sentinel group for tests: a master and a replica ({@link RedisServer}s on free
 * loopback ports) watched by one {@code redis-server --sentinel} (quorum 1) under the master name
 * {@link #MASTER}. wsguard reaches it as {@link #uri()}, {@code redis-sentinel://127.0.0.1:PORT#mymaster},
 * and asks the sentinel where the master is on every (re)connect. {@link #failover()} kills the
 * master and waits until the sentinel has promoted the replica.
 */
public final class RedisSentinelGroup implements AutoCloseable {

    /** The master's name in the sentinel's configuration. */
    public static final String MASTER = "mymaster";

    private final RedisServer master;
    private final RedisServer replica;
    private final int sentinelPort;
    private final Path log;
    private Process sentinel;

    private RedisSentinelGroup(RedisServer master, RedisServer replica, int sentinelPort, Path log) {
        this.master = master;
        this.replica = replica;
        this.sentinelPort = sentinelPort;
        this.log = log;
    }

    /** Starts the group without a password. */
    public static RedisSentinelGroup start(Path dir) throws Exception {
        return start(dir, null);
    }

    /**
     * Starts master, replica and sentinel, and waits until the sentinel knows the master and its
     * replica. With a {@code password}, master and replica require it (the sentinel itself does not).
     */
    public static RedisSentinelGroup start(Path dir, String password) throws Exception {
        final RedisServer master = RedisServer.onFreePort(dir);
        final RedisServer replica = RedisServer.onFreePort(dir);
        if (password != null) {
            master.password(password);
            replica.password(password);
        }
        replica.withArgs("--replicaof", "127.0.0.1", Integer.toString(master.port()));
        final int sentinelPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            sentinelPort = socket.getLocalPort();
        }
        final RedisSentinelGroup group =
                new RedisSentinelGroup(master, replica, sentinelPort, dir.resolve("sentinel-" + sentinelPort + ".log"));
        try {
            master.start();
            replica.start();
            // The sentinel rewrites its configuration file as it learns: it must be its own, writable.
            final StringBuilder conf = new StringBuilder()
                    .append("port ")
                    .append(sentinelPort)
                    .append("\nbind 127.0.0.1\n")
                    .append("dir ")
                    .append(dir)
                    .append("\nsentinel monitor ")
                    .append(MASTER)
                    .append(" 127.0.0.1 ")
                    .append(master.port())
                    .append(" 1\nsentinel down-after-milliseconds ")
                    .append(MASTER)
                    .append(" 1000\nsentinel failover-timeout ")
                    .append(MASTER)
                    .append(" 5000\n");
            if (password != null) {
                conf.append("sentinel auth-pass ")
                        .append(MASTER)
                        .append(' ')
                        .append(password)
                        .append('\n');
            }
            final Path file = Files.writeString(dir.resolve("sentinel-" + sentinelPort + ".conf"), conf);
            group.sentinel = new ProcessBuilder("redis-server", file.toString(), "--sentinel")
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(group.log.toFile()))
                    .start();
            group.awaitMaster(master.port());
            group.awaitReplicas(1);
            return group;
        } catch (Exception | AssertionError e) {
            group.close();
            throw e;
        }
    }

    /** {@code redis-sentinel://127.0.0.1:PORT#mymaster}. */
    public String uri() {
        return "redis-sentinel://127.0.0.1:" + sentinelPort + "#" + MASTER;
    }

    public RedisServer master() {
        return master;
    }

    public RedisServer replica() {
        return replica;
    }

    /**
     * Kills the master (SIGKILL) and waits until the sentinel names the replica as the master.
     * Afterwards {@link #replica()} is the master; the old master stays down.
     */
    public void failover() throws Exception {
        master.kill();
        awaitMaster(replica.port());
    }

    /** Until the sentinel answers {@code get-master-addr-by-name} with {@code port}. */
    private void awaitMaster(int port) throws Exception {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            final String reply = sentinel("sentinel", "get-master-addr-by-name", MASTER);
            if (reply.lines().anyMatch(line -> line.trim().equals(Integer.toString(port)))) {
                return;
            }
            if (!sentinel.isAlive() || System.nanoTime() - deadline > 0) {
                throw new AssertionError("the sentinel on " + sentinelPort + " never named port " + port
                        + " as the master (last reply: " + reply + "); see " + log);
            }
            Thread.sleep(100);
        }
    }

    /** Until the sentinel has discovered {@code count} replicas of the master. */
    private void awaitReplicas(int count) throws Exception {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            final String reply = sentinel("sentinel", "replicas", MASTER);
            final long found =
                    reply.lines().filter(line -> line.trim().equals("slave")).count();
            if (found >= count) {
                return;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("the sentinel on " + sentinelPort + " found " + found + " replicas, not "
                        + count + "; see " + log);
            }
            Thread.sleep(100);
        }
    }

    private String sentinel(String... command) throws IOException, InterruptedException {
        final List<String> args = new java.util.ArrayList<>(
                List.of("redis-cli", "-h", "127.0.0.1", "-p", Integer.toString(sentinelPort)));
        args.addAll(List.of(command));
        final Process process =
                new ProcessBuilder(args).redirectErrorStream(true).start();
        final String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        process.waitFor(5, TimeUnit.SECONDS);
        return text;
    }

    @Override
    public void close() throws InterruptedException {
        if (sentinel != null) {
            sentinel.destroyForcibly();
            sentinel.waitFor(10, TimeUnit.SECONDS);
        }
        replica.close();
        master.close();
    }
}
