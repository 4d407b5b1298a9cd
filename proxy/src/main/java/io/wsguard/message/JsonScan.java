package io.wsguard.message;

import java.util.ArrayList;
import java.util.List;
import tools.jackson.core.JacksonException;
import tools.jackson.core.JsonParser;
import tools.jackson.core.JsonToken;
import tools.jackson.core.ObjectReadContext;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.core.exc.StreamConstraintsException;
import tools.jackson.core.exc.UnexpectedEndOfInputException;
import tools.jackson.core.json.JsonFactory;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.JsonNodeFactory;
import tools.jackson.databind.node.ObjectNode;

/**
 * One streaming pass over a JSON text message, straight from the relay's bytes: it checks that the
 * message is exactly one JSON document within the parser's limits, with no object holding a key
 * twice, in the same case or not ({@link ObjectKeys}), and on the way builds the tree
 * for the schema (only when there is one), matches deny rules against every decoded string and key
 * (only when asked), and sanitizes the selected string values, remembering where each changed one
 * sits in the bytes so that a rewrite replaces just those tokens and leaves every other byte as the
 * client sent it (numbers keep their spelling, keys their order).
 *
 * <p>Not thread-safe: one instance per message.
 */
final class JsonScan {

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /** A changed string value: bytes {@code [start, end)} of the message (quotes included), its new value. */
    record Edit(int start, int end, String value, String path) {}

    /** Null when the message parsed. */
    private String failure;
    /** The failure is a refused limit or ambiguity (depth, length, duplicate key), not a syntax error. */
    private boolean limit;

    private JsonNode root;
    private int deniedRule = -1;
    private List<Edit> edits;

    private final DenyRules deny;
    private final SanitizeRules sanitize;
    private final boolean tree;
    private final long maxSize;
    private CharsView view;

    private JsonScan(boolean tree, DenyRules deny, SanitizeRules sanitize, long maxSize) {
        this.tree = tree;
        this.deny = deny;
        this.sanitize = sanitize;
        this.maxSize = maxSize;
    }

    /**
     * Scans {@code buf[off, off+len)}. {@code deny} (nullable) is matched against decoded strings and
     * keys, {@code sanitize} (nullable) is applied to the string values it selects.
     */
    static JsonScan run(
            JsonFactory factory,
            byte[] buf,
            int off,
            int len,
            long maxSize,
            boolean tree,
            DenyRules deny,
            SanitizeRules sanitize) {
        final JsonScan scan = new JsonScan(tree, deny, sanitize, maxSize);
        if (hasNulInFirstFour(buf, off, len)) {
            // Jackson takes NULs among the first four bytes as UTF-16 or UTF-32 and decodes the bytes as
            // that: the schema would check a document the upstream, reading UTF-8 (RFC 8259 §8.1), never sees.
            scan.failure = "not JSON: not UTF-8 (a NUL byte among the first four)";
            scan.limit = true;
            return scan;
        }
        final ObjectKeys keys = ObjectKeys.forThisThread();
        try (JsonParser parser = factory.createParser(ObjectReadContext.empty(), buf, off, len)) {
            scan.read(parser, keys);
        } catch (JacksonException e) {
            scan.fail(e);
        } finally {
            keys.clear();
        }
        return scan;
    }

    private static boolean hasNulInFirstFour(byte[] buf, int off, int len) {
        for (int i = off; i < off + Math.min(4, len); i++) {
            if (buf[i] == 0) {
                return true;
            }
        }
        return false;
    }

    boolean failed() {
        return failure != null;
    }

    /** {@code not JSON: …}: the parser's reason and position, never an excerpt of the message. */
    String failure() {
        return failure;
    }

    /** Whether the failure is a limit or an ambiguity, refused even where JSON is optional. */
    boolean limitExceeded() {
        return limit;
    }

    /** The document, when a tree was asked for. */
    JsonNode root() {
        return root;
    }

    /** The lowest-numbered deny rule found in a decoded string or key, or -1. */
    int deniedRule() {
        return deniedRule;
    }

    /** The sanitized string values in message order; empty when none changed. */
    List<Edit> edits() {
        return edits == null ? List.of() : edits;
    }

    private void read(JsonParser p, ObjectKeys keys) {
        JsonToken token = p.nextToken();
        if (token == null) {
            failure = "not JSON: empty message";
            return;
        }
        JsonNode[] stack = tree ? new JsonNode[16] : null;
        int depth = 0;
        String name = null;
        while (true) {
            switch (token) {
                case START_OBJECT, START_ARRAY -> {
                    if (token == JsonToken.START_OBJECT) {
                        keys.open();
                    }
                    if (tree) {
                        final JsonNode container =
                                token == JsonToken.START_OBJECT ? NODES.objectNode() : NODES.arrayNode();
                        attach(stack, depth, name, container);
                        if (depth == stack.length) {
                            stack = java.util.Arrays.copyOf(stack, depth * 2);
                        }
                        stack[depth] = container;
                    }
                    depth++;
                }
                case END_OBJECT -> {
                    keys.close();
                    depth--;
                }
                case END_ARRAY -> depth--;
                case PROPERTY_NAME -> {
                    name = p.currentName();
                    final ObjectKeys.Clash clash = keys.add(name);
                    if (clash != ObjectKeys.Clash.NONE) {
                        duplicate(p, clash);
                        return;
                    }
                    if (deny != null) {
                        matchDeny(name);
                    }
                }
                case VALUE_STRING -> string(p, stack, depth, name);
                case VALUE_NUMBER_INT -> {
                    if (tree) {
                        attach(
                                stack,
                                depth,
                                name,
                                switch (p.getNumberType()) {
                                    case INT -> NODES.numberNode(p.getIntValue());
                                    case LONG -> NODES.numberNode(p.getLongValue());
                                    default -> NODES.numberNode(p.getBigIntegerValue());
                                });
                    }
                }
                case VALUE_NUMBER_FLOAT -> {
                    if (tree) {
                        // A double, as Jackson's own tree reader makes by default: bounded in size, so
                        // schema arithmetic (multipleOf) stays cheap whatever the exponent.
                        attach(stack, depth, name, NODES.numberNode(p.getDoubleValue()));
                    }
                }
                case VALUE_TRUE, VALUE_FALSE -> {
                    if (tree) {
                        attach(stack, depth, name, NODES.booleanNode(token == JsonToken.VALUE_TRUE));
                    }
                }
                case VALUE_NULL -> {
                    if (tree) {
                        attach(stack, depth, name, NODES.nullNode());
                    }
                }
                default -> {
                    failure = "not JSON: unexpected token";
                    return;
                }
            }
            if (depth == 0) {
                break;
            }
            token = p.nextToken();
            if (token == null) {
                failure = "not JSON: unexpected end of input";
                return;
            }
        }
        // Exactly one document: "{…} x" and "{…}{…}" are not JSON (a second document is a smuggling vector).
        try {
            if (p.nextToken() != null) {
                failure = "not JSON: trailing content after the document" + at(p.currentTokenLocation());
            }
        } catch (JacksonException e) {
            failure = "not JSON: trailing content after the document" + at(e.getLocation());
        }
    }

    /**
     * An object with two equal keys, or two that differ only in case, reads differently to different
     * parsers (first wins, last wins, case-insensitive binding): refused even where JSON is optional.
     */
    private void duplicate(JsonParser p, ObjectKeys.Clash clash) {
        limit = true;
        if (clash == ObjectKeys.Clash.EXACT) {
            failure = "not JSON: duplicate key" + at(p.currentTokenLocation());
        } else {
            // The object's path, not the key's: the two spellings are the client's, and the path names the place.
            failure = JsonPaths.of(p.streamReadContext().getParent()) + ": duplicate key differing only in case";
        }
    }

    private void attach(JsonNode[] stack, int depth, String name, JsonNode node) {
        if (depth == 0) {
            root = node;
        } else if (stack[depth - 1] instanceof ObjectNode object) {
            object.set(name, node);
        } else {
            ((ArrayNode) stack[depth - 1]).add(node);
        }
    }

    private void string(JsonParser p, JsonNode[] stack, int depth, String name) {
        String value = null;
        if (tree) {
            value = p.getString();
            attach(stack, depth, name, NODES.stringNode(value));
        }
        if (deny != null) {
            if (value != null) {
                matchDeny(value);
            } else {
                if (view == null) {
                    view = new CharsView();
                }
                view.set(p.getStringCharacters(), p.getStringOffset(), p.getStringLength());
                matchDeny(view);
            }
        }
        if (sanitize != null && sanitize.selects(p.streamReadContext())) {
            final boolean markup = value != null
                    ? SanitizeRules.mayHoldMarkup(value)
                    : SanitizeRules.mayHoldMarkup(p.getStringCharacters(), p.getStringOffset(), p.getStringLength());
            if (!markup) {
                return;
            }
            if (value == null) {
                value = p.getString();
            }
            final String sanitized = sanitize.sanitize(value);
            if (sanitized.equals(value)) {
                return;
            }
            if (edits == null) {
                edits = new ArrayList<>(2);
            }
            // The whole token has been read: the current location is just past its closing quote.
            final int start = (int) p.currentTokenLocation().getByteOffset();
            final int end = (int) p.currentLocation().getByteOffset();
            edits.add(new Edit(start, end, sanitized, edits.size() < 3 ? JsonPaths.of(p.streamReadContext()) : null));
        }
    }

    private void matchDeny(CharSequence text) {
        final int found = deny.firstMatch(text, deniedRule < 0 ? deny.size() : deniedRule);
        if (found >= 0) {
            deniedRule = found;
        }
    }

    private void fail(JacksonException e) {
        final String original = String.valueOf(e.getOriginalMessage());
        if (e instanceof StreamConstraintsException) {
            limit = true;
            if (original.contains("getMaxNestingDepth")) {
                failure = "not JSON: nesting deeper than " + ContentRules.MAX_DEPTH;
            } else if (original.contains("getMaxStringLength")) {
                failure = "not JSON: a string longer than " + maxSize + " characters";
            } else if (original.contains("getMaxNumberLength")) {
                failure = "not JSON: a number longer than " + ContentRules.MAX_NUMBER_LENGTH + " characters";
            } else if (original.contains("getMaxNameLength")) {
                failure =
                        "not JSON: a property name longer than " + ContentRules.maxNameLength(maxSize) + " characters";
            } else if (original.contains("getMaxDocumentLength")) {
                failure = "not JSON: longer than " + maxSize + " bytes";
            } else {
                failure = "not JSON: beyond the parser's limits";
            }
            return;
        }
        if (e instanceof UnexpectedEndOfInputException || original.startsWith("Unexpected end-of-input")) {
            failure = "not JSON: unexpected end of input";
            return;
        }
        // Jackson's messages quote the offending token or key: keep only the kind and the position.
        final String kind;
        if (original.startsWith("Unrecognized token")) {
            kind = "unrecognized token";
        } else if (original.startsWith("Unexpected character")) {
            kind = "unexpected character";
        } else if (original.startsWith("Illegal unquoted character")) {
            kind = "control character in a string";
        } else if (original.startsWith("Unrecognized character escape")) {
            kind = "invalid escape";
        } else if (original.startsWith("Invalid UTF-8")) {
            kind = "invalid UTF-8";
        } else if (original.contains("numeric value") || original.contains("Non-standard token")) {
            kind = "invalid number";
        } else {
            kind = "syntax error";
        }
        failure = "not JSON: " + kind + at(e.getLocation());
    }

    private static String at(TokenStreamLocation location) {
        return location == null || location.getLineNr() < 1
                ? ""
                : " at " + location.getLineNr() + ":" + location.getColumnNr();
    }

    /** A reusable window on the parser's char buffer, so that deny rules read decoded strings without copying. */
    static final class CharsView implements CharSequence {
        private char[] chars;
        private int offset;
        private int length;

        void set(char[] chars, int offset, int length) {
            this.chars = chars;
            this.offset = offset;
            this.length = length;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public char charAt(int index) {
            if (index < 0 || index >= length) {
                throw new IndexOutOfBoundsException(index);
            }
            return chars[offset + index];
        }

        @Override
        public CharSequence subSequence(int start, int end) {
            return toString().substring(start, end);
        }

        @Override
        public String toString() {
            return new String(chars, offset, length);
        }
    }
}
