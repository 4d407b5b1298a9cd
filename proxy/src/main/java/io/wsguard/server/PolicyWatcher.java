package io.wsguard.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reloads the policy when its file changes (README, Admin port). Polls the content's SHA-256, so an editor's
 * write-and-rename, a ConfigMap's symlink swap and an in-place write are all seen, and a touch that
 * changes nothing reloads nothing. One daemon thread.
 */
final class PolicyWatcher extends AbstractLifeCycle {

    private static final Logger LOG = LoggerFactory.getLogger(PolicyWatcher.class);

    private final Path file;
    private final long intervalMillis;
    private final Runnable onChange;
    private byte[] lastDigest;
    private Thread thread;

    PolicyWatcher(Path file, Duration interval, Runnable onChange) {
        this.file = file;
        this.intervalMillis = interval.toMillis();
        this.onChange = onChange;
    }

    @Override
    protected void doStart() {
        lastDigest = digest();
        thread = new Thread(this::run, "wsguard-policy-watcher");
        thread.setDaemon(true);
        thread.start();
    }

    @Override
    protected void doStop() throws InterruptedException {
        thread.interrupt();
        thread.join(2000);
    }

    private void run() {
        while (!Thread.currentThread().isInterrupted()) {
            try {
                Thread.sleep(intervalMillis);
            } catch (InterruptedException e) {
                return;
            }
            final byte[] now = digest();
            if (now != null && !Arrays.equals(now, lastDigest)) {
                lastDigest = now;
                try {
                    onChange.run();
                } catch (RuntimeException e) {
                    LOG.warn("policy reload failed: {}", e.toString());
                }
            }
        }
    }

    /** The file's SHA-256, or null while it cannot be read (mid-replace): that is not a change. */
    private byte[] digest() {
        try {
            return MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file));
        } catch (IOException e) {
            return null;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
