package io.wsguard.cluster;

import static java.util.Objects.requireNonNull;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.json.JsonMapper;

/**
 * What one instance tells every other through Redis pub/sub, on the channel {@value #CHANNEL}: an
 * operator's close and revocations. A message is a flat JSON object of strings: {@code type}, the
 * sender's instance id as {@code from}, and the type's own fields.
 *
 * <p>Pub/sub delivers at most once, to the instances subscribed at that moment: what must not be
 * lost (revocations) is also kept in Redis and read again at every heartbeat. Whoever can publish on
 * this Redis can close connections on every instance: the Redis of a cluster is as trusted as its
 * admin ports.
 *
 * <p>Handlers run on the given executor, never on Lettuce's I/O threads; an instance ignores its own
 * messages (it acted before it published).
 */
public final class ClusterEvents {

    /** The channel every instance of a cluster listens on. */
    public static final String CHANNEL = "wsguard:events";

    private static final Logger LOG = LoggerFactory.getLogger(ClusterEvents.class);
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final TypeReference<Map<String, String>> FIELDS = new TypeReference<>() {};

    private final RedisStore store;
    private final Executor executor;
    private final Map<String, Consumer<Map<String, String>>> handlers = new ConcurrentHashMap<>();

    /** Subscribes to {@value #CHANNEL} on {@code store}; handlers run on {@code executor}. */
    public ClusterEvents(RedisStore store, Executor executor) {
        this.store = requireNonNull(store, "store");
        this.executor = requireNonNull(executor, "executor");
        store.subscribe(CHANNEL, this::received);
    }

    /** This instance's id, as {@code from} in what it publishes. */
    public String instanceId() {
        return store.instanceId();
    }

    /** Handles messages of {@code type} from other instances from now on; one handler per type. */
    public void on(String type, Consumer<Map<String, String>> handler) {
        handlers.put(type, handler);
    }

    /**
     * Publishes a {@code type} message with {@code fields} (null values left out). The stage gives
     * how many subscribers got it, this instance included, or fails fast while Redis is unavailable
     * (counted as a fallback under {@code feature}).
     */
    public CompletionStage<Long> publish(String feature, String type, Map<String, String> fields) {
        final Map<String, String> message = new LinkedHashMap<>();
        message.put("type", type);
        message.put("from", store.instanceId());
        fields.forEach((name, value) -> {
            if (value != null) {
                message.put(name, value);
            }
        });
        return store.publish(feature, CHANNEL, JSON.writeValueAsString(message));
    }

    private void received(String text) {
        final Map<String, String> message;
        try {
            message = JSON.readValue(text, FIELDS);
        } catch (JacksonException e) {
            // Not ours (another program on the channel) or garbled: nothing to act on.
            LOG.warn("cluster events: ignored a message on {} that is not a flat JSON object of strings", CHANNEL);
            return;
        }
        if (message == null || store.instanceId().equals(message.get("from"))) {
            return;
        }
        final Consumer<Map<String, String>> handler = handlers.get(String.valueOf(message.get("type")));
        if (handler == null) {
            // A newer instance's event type: an older one ignores it rather than guess.
            LOG.debug("cluster events: no handler for type {}", message.get("type"));
            return;
        }
        try {
            executor.execute(() -> {
                try {
                    handler.accept(message);
                } catch (RuntimeException e) {
                    LOG.warn(
                            "cluster events: handling {} from {} failed: {}",
                            message.get("type"),
                            message.get("from"),
                            e.toString());
                }
            });
        } catch (RejectedExecutionException stopping) {
            LOG.debug("cluster events: {} from {} arrived while stopping", message.get("type"), message.get("from"));
        }
    }
}
