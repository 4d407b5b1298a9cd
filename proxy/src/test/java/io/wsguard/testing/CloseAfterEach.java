package io.wsguard.testing;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * What a test started (proxies, Redis servers, stores), closed after it in the reverse order of
 * starting, even when the test failed: {@code @RegisterExtension final CloseAfterEach closeAfter =
 * new CloseAfterEach();} and {@code closeAfter.add(proxy)}.
 */
public final class CloseAfterEach implements AfterEachCallback {

    private final List<AutoCloseable> started = new ArrayList<>();

    /** Closes {@code resource} after the test; returns it. */
    public <T extends AutoCloseable> T add(T resource) {
        started.add(resource);
        return resource;
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        Exception first = null;
        for (int i = started.size() - 1; i >= 0; i--) {
            try {
                started.get(i).close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        started.clear();
        if (first != null) {
            throw first;
        }
    }
}
