package io.wsguard.policy;

import io.wsguard.policy.YamlTree.Entry;
import io.wsguard.policy.YamlTree.YMap;
import io.wsguard.policy.YamlTree.YNode;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A map's known keys, from {@link Values#fields}; reading one records where it was written. */
final class Fields {

    private final Values values;
    private final YMap map;
    private final String path;
    private final Map<String, Entry> byKey;

    Fields(Values values, YMap map, String path, Map<String, Entry> byKey) {
        this.values = values;
        this.map = map;
        this.path = path;
        this.byKey = byKey;
    }

    /** The map itself: where problems about the map as a whole are reported. */
    YMap map() {
        return map;
    }

    String child(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    boolean has(String key) {
        return byKey.containsKey(key);
    }

    /** The known keys, as written. */
    List<String> keys() {
        return List.copyOf(byKey.keySet());
    }

    Optional<YNode> get(String key) {
        final Entry entry = byKey.get(key);
        if (entry == null) {
            return Optional.empty();
        }
        values.locate(child(key), entry);
        return Optional.of(entry.value());
    }

    /** Like {@link #get}; when absent, a problem at this map. */
    Optional<YNode> required(String key, String expected) {
        if (!has(key)) {
            values.problem(map, path, "missing required key '" + key + "' (expected: " + expected + ")");
            return Optional.empty();
        }
        return get(key);
    }

    /**
     * A section whose keys all have defaults; when absent, an empty map at this map's place, so that
     * the section's binder applies its per-key defaults and no default is written twice.
     */
    YNode section(String key) {
        return get(key).orElseGet(() -> new YMap(List.of(), map.line(), map.column()));
    }
}
