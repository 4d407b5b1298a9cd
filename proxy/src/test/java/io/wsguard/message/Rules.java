package io.wsguard.message;

import io.wsguard.check.Verdict;
import io.wsguard.policy.Action;
import io.wsguard.policy.MessagePolicy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Builds {@code messages:} policies for the content-rule tests, as the binder would. */
final class Rules {

    static final long MAX_SIZE = 64 * 1024;

    /** A small chat schema: {type: chat, text, room?, n?}, nothing else. */
    static final String CHAT_SCHEMA = """
            {
              "type": "object",
              "required": ["type", "text"],
              "additionalProperties": false,
              "properties": {
                "type": { "const": "chat" },
                "text": { "type": "string", "maxLength": 2000 },
                "room": { "type": "string", "pattern": "^[a-z0-9-]{1,32}$" },
                "n": { "type": "integer" }
              }
            }
            """;

    private Rules() {}

    static MessagePolicy messages(
            Optional<MessagePolicy.JsonPolicy> json,
            Optional<MessagePolicy.SanitizePolicy> sanitize,
            List<MessagePolicy.DenyRulePolicy> deny) {
        return new MessagePolicy(
                MessagePolicy.Direction.INBOUND, MAX_SIZE, true, false, json, sanitize, deny, Action.CLOSE);
    }

    static ContentRules json(Path schema, boolean required) {
        return ContentRules.compile(messages(
                Optional.of(new MessagePolicy.JsonPolicy(required, Optional.of(schema), Optional.empty(), Map.of())),
                Optional.empty(),
                List.of()));
    }

    static ContentRules deny(String... namesAndPatterns) {
        return ContentRules.compile(messages(Optional.empty(), Optional.empty(), denyRules(namesAndPatterns)));
    }

    static List<MessagePolicy.DenyRulePolicy> denyRules(String... namesAndPatterns) {
        final MessagePolicy.DenyRulePolicy[] rules = new MessagePolicy.DenyRulePolicy[namesAndPatterns.length / 2];
        for (int i = 0; i < rules.length; i++) {
            rules[i] = new MessagePolicy.DenyRulePolicy(namesAndPatterns[2 * i], namesAndPatterns[2 * i + 1]);
        }
        return Arrays.asList(rules);
    }

    static Optional<MessagePolicy.SanitizePolicy> sanitize(MessagePolicy.Html html, String... fields) {
        return Optional.of(new MessagePolicy.SanitizePolicy(html, List.of(fields)));
    }

    static Optional<MessagePolicy.JsonPolicy> jsonPolicy(Path schema, boolean required) {
        return Optional.of(new MessagePolicy.JsonPolicy(required, Optional.of(schema), Optional.empty(), Map.of()));
    }

    static Path write(Path dir, String name, String text) {
        try {
            return Files.writeString(dir.resolve(name), text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Verdict inspect(ContentRules rules, String text) {
        final byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        return rules.inspectText(bytes, 0, bytes.length);
    }

    /** The detail of a deny or rewrite, "" for ALLOW. */
    static String detail(Verdict verdict) {
        if (verdict instanceof Verdict.Deny deny) {
            return deny.detail();
        }
        if (verdict instanceof Verdict.Rewrite rewrite) {
            return rewrite.detail();
        }
        return "";
    }
}
