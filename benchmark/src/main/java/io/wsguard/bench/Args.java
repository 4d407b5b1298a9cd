package io.wsguard.bench;

import java.util.HashMap;
import java.util.Map;

/** Minimal {@code --name value} / {@code --flag} parsing; unknown names are the caller's business. */
final class Args {

    private final Map<String, String> values;

    private Args(Map<String, String> values) {
        this.values = values;
    }

    static Args parse(String[] args) {
        final Map<String, String> values = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            final String arg = args[i];
            if (!arg.startsWith("--")) {
                throw new IllegalArgumentException("argument " + (i + 1) + ": '" + arg + "' (expected: --name value)");
            }
            final String name = arg.substring(2);
            if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                values.put(name, args[++i]);
            } else {
                values.put(name, "true");
            }
        }
        return new Args(values);
    }

    String string(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    boolean has(String name) {
        return values.containsKey(name);
    }

    int integer(String name, int fallback) {
        return (int) number(name, fallback);
    }

    long number(String name, long fallback) {
        final String text = values.get(name);
        if (text == null) {
            return fallback;
        }
        try {
            return Long.parseLong(text.replace("_", ""));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + ": '" + text + "' (expected: a whole number)", e);
        }
    }

    double decimal(String name, double fallback) {
        final String text = values.get(name);
        if (text == null) {
            return fallback;
        }
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + ": '" + text + "' (expected: a number)", e);
        }
    }
}
