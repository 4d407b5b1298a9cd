package io.wsguard.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis Cluster for tests: three {@code redis-server --cluster-enabled yes} masters on free
 * loopback ports, no replicas, joined by {@code redis-cli --cluster create}, each holding a third of
 * the 16384 slots. wsguard reaches it with {@code cluster: true} and any node as the seed
 * ({@link #seedUri()}); Lettuce learns the others from it.
 */
public final class RedisClusterNodes implements AutoCloseable {

    private final List<RedisServer> nodes;

    private RedisClusterNodes(List<RedisServer> nodes) {
        this.nodes = nodes;
    }

    /** Starts three nodes, creates the cluster and waits until every node says {@code cluster_state:ok}. */
    public static RedisClusterNodes start(Path dir) throws Exception {
        final List<RedisServer> nodes = new ArrayList<>();
        final RedisClusterNodes cluster = new RedisClusterNodes(nodes);
        try {
            for (int i = 0; i < 3; i++) {
                final RedisServer node = RedisServer.onFreePort(dir);
                node.withArgs(
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        dir.resolve("nodes-" + node.port() + ".conf").toString(),
                        "--cluster-node-timeout",
                        "2000");
                nodes.add(node);
                node.start();
            }
            final List<String> create = new ArrayList<>(List.of("redis-cli", "--cluster", "create"));
            for (RedisServer node : nodes) {
                create.add("127.0.0.1:" + node.port());
            }
            create.addAll(List.of("--cluster-replicas", "0", "--cluster-yes"));
            final Path out = dir.resolve("cluster-create.log");
            final Process process = new ProcessBuilder(create)
                    .redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .start();
            if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
                throw new AssertionError("redis-cli --cluster create failed: " + Files.readString(out));
            }
            cluster.awaitState("cluster_state:ok");
            return cluster;
        } catch (Exception | AssertionError e) {
            cluster.close();
            throw e;
        }
    }

    /** The URI of one node, for {@code rateLimitStore.redis.uri} with {@code cluster: true}. */
    public String seedUri() {
        return nodes.get(0).uri();
    }

    public List<RedisServer> nodes() {
        return nodes;
    }

    /** {@code CLUSTER INFO} of every node, until each holds {@code line}. */
    private void awaitState(String line) throws Exception {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        for (RedisServer node : nodes) {
            while (!clusterInfo(node).contains(line)) {
                if (System.nanoTime() - deadline > 0) {
                    throw new AssertionError("node " + node.port() + " never said " + line + ": " + clusterInfo(node));
                }
                Thread.sleep(100);
            }
        }
    }

    /** The whole multi-line reply, which {@link RedisServer#command} does not read. */
    private static String clusterInfo(RedisServer node) throws IOException, InterruptedException {
        final Process process = new ProcessBuilder(
                        "redis-cli", "-h", "127.0.0.1", "-p", Integer.toString(node.port()), "cluster", "info")
                .redirectErrorStream(true)
                .start();
        final String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        process.waitFor(5, TimeUnit.SECONDS);
        return text;
    }

    @Override
    public void close() throws InterruptedException {
        for (RedisServer node : nodes) {
            node.close();
        }
    }
}
