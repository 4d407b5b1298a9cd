package io.wsguard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ConnectionCounterTest {

    @Test
    void countsUpToTheCapAndForgetsKeysAtZero() {
        final ConnectionCounter counter = new ConnectionCounter();
        assertThat(counter.tryAcquire("a", 2)).isTrue();
        assertThat(counter.tryAcquire("a", 2)).isTrue();
        assertThat(counter.tryAcquire("a", 2)).isFalse();
        assertThat(counter.tryAcquire("b", 2)).isTrue();
        assertThat(counter.count("a")).isEqualTo(2);
        counter.release("a");
        assertThat(counter.tryAcquire("a", 2)).isTrue();
        counter.release("a");
        counter.release("a");
        counter.release("b");
        assertThat(counter.keys()).isZero();
        // A release too many does not go negative (and does not create the key).
        counter.release("a");
        assertThat(counter.count("a")).isZero();
        assertThat(counter.keys()).isZero();
    }

    @Test
    void exactUnderConcurrency() throws Exception {
        final ConnectionCounter counter = new ConnectionCounter();
        final ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            final AtomicInteger granted = new AtomicInteger();
            final CountDownLatch go = new CountDownLatch(1);
            final List<Future<?>> tasks = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                tasks.add(pool.submit(() -> {
                    go.await();
                    for (int i = 0; i < 10_000; i++) {
                        if (counter.tryAcquire("k", 10)) {
                            granted.incrementAndGet();
                            // Hold some, give back others: the count must never pass 10.
                            assertThat(counter.count("k")).isLessThanOrEqualTo(10);
                            if (i % 2 == 0) {
                                counter.release("k");
                                granted.decrementAndGet();
                            }
                        }
                    }
                    return null;
                }));
            }
            go.countDown();
            for (Future<?> task : tasks) {
                task.get(30, TimeUnit.SECONDS);
            }
            assertThat(counter.count("k")).isEqualTo(granted.get()).isLessThanOrEqualTo(10);
        } finally {
            pool.shutdownNow();
        }
    }
}
