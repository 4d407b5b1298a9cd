package io.wsguard.tls;

import static java.util.Objects.requireNonNull;

import io.wsguard.policy.TlsPolicy;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Swaps renewed certificates into a running listener: a Jetty bean (add it to the {@code Server}
 * with {@code addBean}) that polls every file of a {@link TlsPolicy}.
 *
 * <p>Every {@code interval} (default 1 s) it takes each file's size, modification time and SHA-256.
 * A changed set of files is read once it has stayed the same for one more poll: renewals write a
 * certificate, then its chain, then a key, and a set read in between would be half old, half new.
 * Only if the whole set loads cleanly (every file parses to its end, every chain is in order,
 * every key matches its certificate) does it call {@link SslContextFactory#reload}: new handshakes
 * get the new certificates, connections already open keep theirs. Otherwise the listener keeps
 * the previous material, one WARN is logged and the failure hook is called, once per state of the
 * files; and the same files are read again at every poll for {@link #RETRY_FOR}, because the
 * writer is probably still at work and may finish with the very bytes the poll already saw (a
 * rewrite of the same renewal), which no later change would announce.
 *
 * <p>Polling rather than a {@code WatchService}: renewals often replace files by renaming a
 * symbolic link (Kubernetes secrets), which a directory watch on the target misses, and content
 * hashes catch writes that keep size and modification time.
 *
 * <p>Thread-safety: polls run on one daemon thread owned by this bean; {@link #reloads()} and
 * {@link #failures()} may be read from any thread.
 */
public final class CertificateReloader extends AbstractLifeCycle {

    /** Poll interval unless told otherwise. */
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(1);

    /** How long a set of files that did not load is read again at every poll while it stays the same. */
    static final Duration RETRY_FOR = Duration.ofSeconds(30);

    private static final Logger LOG = LoggerFactory.getLogger(CertificateReloader.class);

    private final TlsPolicy policy;
    private final SslContextFactory.Server ssl;
    private final Duration interval;
    private final Consumer<String> onFailure;
    private final Runnable onReload;
    private final List<Path> files;
    private final AtomicLong reloads = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final int retriesPerState;
    /** The files as the last poll found them. */
    private Map<Path, String> lastSeen;
    /** The files as last loaded, whether the load worked or not; at first, the material the factory holds. */
    private Map<Path, String> lastLoaded;
    /** Loads left for {@link #lastLoaded} after it failed; 0 once it loaded. */
    private int retriesLeft;

    private ScheduledExecutorService poller;

    /** Polls every second and only logs failures. */
    public CertificateReloader(TlsPolicy policy, SslContextFactory.Server ssl) {
        this(policy, ssl, DEFAULT_INTERVAL, message -> {});
    }

    /**
     * A reloader for the factory that {@link ServerTls#create} made from {@code policy}. The files'
     * state is taken now, so build it right after the factory: a change in between would be missed
     * until the next one.
     *
     * @param onFailure called on the polling thread with a one-line message ({@code field: message},
     *     no key material) each time a changed set of files cannot be loaded, e.g. to audit it
     */
    public CertificateReloader(
            TlsPolicy policy, SslContextFactory.Server ssl, Duration interval, Consumer<String> onFailure) {
        this(policy, ssl, interval, onFailure, () -> {});
    }

    /**
     * As above; {@code onReload} is called on the polling thread after each reload that swapped new
     * material in (the factory's key store is then the new one), e.g. to update the certificates'
     * expiry in the metrics.
     */
    public CertificateReloader(
            TlsPolicy policy,
            SslContextFactory.Server ssl,
            Duration interval,
            Consumer<String> onFailure,
            Runnable onReload) {
        this.onReload = requireNonNull(onReload, "onReload");
        this.policy = requireNonNull(policy, "policy");
        this.ssl = requireNonNull(ssl, "ssl");
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("interval: " + interval + " (expected: > 0)");
        }
        this.interval = interval;
        this.onFailure = requireNonNull(onFailure, "onFailure");
        this.files = List.copyOf(KeyMaterial.files(policy));
        this.retriesPerState = (int) Math.max(1, RETRY_FOR.toMillis() / interval.toMillis());
        this.lastSeen = snapshot();
        this.lastLoaded = lastSeen;
    }

    /** How many times new material was swapped in since this bean was made. */
    public long reloads() {
        return reloads.get();
    }

    /** How many changed sets of files could not be loaded (each counted once, however often it is retried). */
    public long failures() {
        return failures.get();
    }

    @Override
    protected void doStart() throws Exception {
        poller = Executors.newSingleThreadScheduledExecutor(task -> {
            final Thread thread = new Thread(task, "wsguard-certificate-reloader");
            thread.setDaemon(true);
            return thread;
        });
        final long millis = interval.toMillis();
        // pollSafely catches what poll throws, so the task never ends by an exception; doStop ends it.
        final Future<?> unused = poller.scheduleWithFixedDelay(this::pollSafely, millis, millis, TimeUnit.MILLISECONDS);
        super.doStart();
    }

    @Override
    protected void doStop() throws Exception {
        poller.shutdownNow();
        poller.awaitTermination(5, TimeUnit.SECONDS);
        super.doStop();
    }

    private void pollSafely() {
        try {
            poll();
        } catch (RuntimeException e) {
            // An exception would cancel the scheduled task and silently end reloading.
            LOG.warn("tls certificate reload: unexpected failure, will retry", e);
        }
    }

    /** One poll: reload if anything changed. Package-private so tests can drive it without waiting. */
    synchronized void poll() {
        final Map<Path, String> now = snapshot();
        final boolean settled = now.equals(lastSeen);
        lastSeen = now;
        if (!settled) {
            return; // changed since the last poll: the writer may not be done
        }
        final boolean retry = now.equals(lastLoaded);
        if (retry && retriesLeft == 0) {
            return;
        }
        retriesLeft = retry ? retriesLeft - 1 : retriesPerState;
        lastLoaded = now;
        final KeyMaterial material;
        try {
            material = KeyMaterial.load(policy);
        } catch (TlsConfigException e) {
            failUnlessRetry(retry, e.toString());
            return;
        }
        try {
            ssl.reload(factory -> material.applyTo((SslContextFactory.Server) factory));
        } catch (Exception e) {
            failUnlessRetry(retry, "cannot apply the new certificates: " + e.getMessage());
            return;
        }
        retriesLeft = 0;
        try {
            onReload.run();
        } catch (RuntimeException e) {
            LOG.warn("tls certificate reload: reload hook threw", e);
        }
        reloads.incrementAndGet();
        LOG.info("tls certificates reloaded from {} files", files.size());
    }

    /** A state of the files is reported once: retries of it fail quietly, or the log would get a line a second. */
    private void failUnlessRetry(boolean retry, String message) {
        if (retry) {
            LOG.debug("tls certificate reload: still failing: {}", message);
            return;
        }
        fail(message);
    }

    /** Counted once reported, so that whoever sees the count also sees the report (the audit line, a test's list). */
    private void fail(String message) {
        LOG.warn("tls certificate reload failed, keeping the previous certificates until the files load: {}", message);
        try {
            onFailure.accept(message);
        } catch (RuntimeException e) {
            LOG.warn("tls certificate reload: failure hook threw", e);
        } finally {
            failures.incrementAndGet();
        }
    }

    /** Per file: size, modification time and content hash, or {@code missing}. */
    private Map<Path, String> snapshot() {
        final Map<Path, String> states = new LinkedHashMap<>();
        for (Path file : files) {
            states.put(file, state(file));
        }
        return states;
    }

    private static String state(Path file) {
        try {
            final BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
            final MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
            try (InputStream in = Files.newInputStream(file)) {
                final byte[] buffer = new byte[8192];
                for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
                    sha256.update(buffer, 0, n);
                }
            }
            return attributes.size() + "/" + attributes.lastModifiedTime().toMillis() + "/"
                    + HexFormat.of().formatHex(sha256.digest());
        } catch (IOException e) {
            return "missing";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
