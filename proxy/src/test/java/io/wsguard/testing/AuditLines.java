package io.wsguard.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.json.JsonMapper;

/** Reads an audit log (JSON Lines) back as one map per line, for assertions on its fields. */
public final class AuditLines {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private AuditLines() {}

    /**
     * Every non-blank line of {@code file}, parsed; empty when the file does not exist yet. A line that
     * is not whole JSON (still being written by another process) throws Jackson's unchecked exception.
     */
    public static List<Map<String, Object>> read(Path file) throws IOException {
        final List<Map<String, Object>> lines = new ArrayList<>();
        if (!Files.exists(file)) {
            return lines;
        }
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (!line.isBlank()) {
                lines.add(parse(line));
            }
        }
        return lines;
    }

    /** One line, parsed. */
    // Jackson reads a JSON object as a Map with String keys; Map.class cannot say so.
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parse(String line) {
        return JSON.readValue(line, Map.class);
    }
}
