package io.wsguard.relay;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.local.SynchronizationStrategy;
import io.wsguard.limit.SubjectRate;
import io.wsguard.policy.Action;
import io.wsguard.policy.LimitsPolicy.RateLimitPolicy;
import io.wsguard.policy.MessagePolicy;

/**
 * What one direction's messages must satisfy on a route, shared by all of its connections:
 * docs/policy.md's {@code messages:} rules and, for the client's direction, {@code limits.messages/bytes}.
 * A direction with nothing beyond the size limit is not {@linkplain #inspects() inspected}: its
 * frames are relayed as they come, with only their size counted.
 *
 * @param maxSize the largest whole message, after decompression; {@code Long.MAX_VALUE}: none
 * @param binaryAllowed {@code binary: allow}
 * @param content the content rules, or null when there are none
 * @param onViolation what a content, type or encoding rule does to an offending message
 * @param messagesPerConnection each connection's message rate, or null
 * @param bytesPerConnection each connection's byte rate, or null
 * @param messagesPerSubject the route's message rate by token subject (shared by the subject's connections,
 *     and with {@code rateLimitStore.type: redis} by every instance), or null
 * @param bytesPerSubject the same for bytes, or null
 * @param onExceed what an exceeded rate does to the message
 * @param maxFragments the most frames one message may arrive in ({@code Long.MAX_VALUE}: none); a
 *     frame Jetty read in pieces counts once per piece
 */
public record MessageRules(
        long maxSize,
        boolean binaryAllowed,
        ContentInspector content,
        Action onViolation,
        RateLimitPolicy messagesPerConnection,
        RateLimitPolicy bytesPerConnection,
        SubjectRate messagesPerSubject,
        SubjectRate bytesPerSubject,
        Action onExceed,
        long maxFragments) {

    /**
     * With the default {@code maxFragments} for {@code maxSize} ({@link MessagePolicy#defaultMaxFragments}; none
     * without a maxSize).
     */
    public MessageRules(
            long maxSize,
            boolean binaryAllowed,
            ContentInspector content,
            Action onViolation,
            RateLimitPolicy messagesPerConnection,
            RateLimitPolicy bytesPerConnection,
            SubjectRate messagesPerSubject,
            SubjectRate bytesPerSubject,
            Action onExceed) {
        this(
                maxSize,
                binaryAllowed,
                content,
                onViolation,
                messagesPerConnection,
                bytesPerConnection,
                messagesPerSubject,
                bytesPerSubject,
                onExceed,
                maxSize == Long.MAX_VALUE ? Long.MAX_VALUE : MessagePolicy.defaultMaxFragments(maxSize));
    }

    /** Only a size limit (and the fragment count that goes with it): frames pass as they come. */
    public static MessageRules sizeOnly(long maxSize) {
        return new MessageRules(maxSize, true, null, Action.CLOSE, null, null, null, null, Action.CLOSE);
    }

    /**
     * Whether messages are checked one by one (and, in enforce mode, held until whole): anything
     * beyond the size limit is configured. UTF-8 is validated only then, so that routes without
     * rules relay frames untouched.
     */
    public boolean inspects() {
        return !binaryAllowed
                || content != null
                || messagesPerConnection != null
                || bytesPerConnection != null
                || messagesPerSubject != null
                || bytesPerSubject != null;
    }

    /**
     * A connection of {@code subject} opened with these rules: the per-subject rates learn of it
     * (with a Redis store the first connection on this instance prefetches a block). Returns what
     * to run when it closes, or null when there is nothing to tell.
     */
    Runnable opened(String subject) {
        if (subject == null || (messagesPerSubject == null && bytesPerSubject == null)) {
            return null;
        }
        if (messagesPerSubject != null) {
            messagesPerSubject.opened(subject);
        }
        if (bytesPerSubject != null) {
            bytesPerSubject.opened(subject);
        }
        return () -> {
            if (messagesPerSubject != null) {
                messagesPerSubject.closed(subject);
            }
            if (bytesPerSubject != null) {
                bytesPerSubject.closed(subject);
            }
        };
    }

    /** A fresh bucket for one connection's messages, or null. */
    Bucket newMessageBucket() {
        return bucket(messagesPerConnection);
    }

    /** A fresh bucket for one connection's bytes, or null. */
    Bucket newByteBucket() {
        return bucket(bytesPerConnection);
    }

    private static Bucket bucket(RateLimitPolicy limit) {
        if (limit == null) {
            return null;
        }
        return Bucket.builder()
                .addLimit(Bandwidth.builder()
                        .capacity(limit.burst())
                        .refillGreedy(limit.rate().amount(), limit.rate().per())
                        .build())
                // One connection's frames are delivered one at a time: the lock is never contended,
                // and unlike the lock-free default it updates the state in place (no allocation per message).
                .withSynchronizationStrategy(SynchronizationStrategy.SYNCHRONIZED)
                .build();
    }
}
