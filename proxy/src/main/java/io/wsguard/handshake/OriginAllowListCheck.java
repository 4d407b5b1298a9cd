package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.policy.Origin;
import io.wsguard.policy.OriginPattern;
import io.wsguard.policy.OriginPolicy;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.eclipse.jetty.http.HttpHeader;

/**
 * A route's {@code origin:} rule (docs/policy.md), the defence against cross-site WebSocket hijacking: the
 * Origin header must be one of {@code allow}, exactly (after normalising case and default ports) or
 * under a {@code https://*.example.com} wildcard. No Origin passes only with {@code allowMissing}
 * (403 {@code origin_missing} otherwise); anything else, {@code null} and unparsable origins
 * included, is 403 {@code origin_denied}.
 *
 * <p>Compiled once: exact origins are a set of normalised keys and wildcards a short list, so a
 * request costs one parse of its header and a set lookup; no regex.
 */
final class OriginAllowListCheck implements HandshakeCheck {

    private static final CompletionStage<Verdict> MISSING =
            HandshakeCheck.deny(Reason.ORIGIN_MISSING, "no Origin header (origin.allowMissing is false)");
    private static final CompletionStage<Verdict> NOT_AN_ORIGIN =
            HandshakeCheck.deny(Reason.ORIGIN_DENIED, "Origin is not a serialized origin");
    private static final CompletionStage<Verdict> SEVERAL =
            HandshakeCheck.deny(Reason.ORIGIN_DENIED, "more than one Origin header");
    private static final CompletionStage<Verdict> DENIED =
            HandshakeCheck.deny(Reason.ORIGIN_DENIED, "origin not in origin.allow");

    private final Set<String> exact;
    private final OriginPattern[] wildcards;
    private final boolean allowMissing;

    /** @throws IllegalArgumentException for an entry that is not an origin (the binder refuses those first) */
    OriginAllowListCheck(OriginPolicy policy) {
        final Set<String> keys = new HashSet<>();
        final List<OriginPattern> stars = new ArrayList<>();
        for (String entry : policy.allow()) {
            final OriginPattern pattern = OriginPattern.parse(entry);
            if (pattern.wildcard()) {
                stars.add(pattern);
            } else {
                keys.add(pattern.origin().key());
            }
        }
        this.exact = Set.copyOf(keys);
        this.wildcards = stars.toArray(OriginPattern[]::new);
        this.allowMissing = policy.allowMissing();
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final String header = request.header(HttpHeader.ORIGIN.asString());
        if (header == null) {
            return allowMissing ? ALLOWED : MISSING;
        }
        if (request.headers().getValuesList(HttpHeader.ORIGIN).size() > 1) {
            // Which one would a browser have meant? Neither: a browser sends exactly one.
            return SEVERAL;
        }
        return decide(header);
    }

    /** The verdict for one Origin header value (package-private for the matcher's table test). */
    CompletionStage<Verdict> decide(String header) {
        final Origin origin = Origin.parse(header);
        if (origin == null) {
            return NOT_AN_ORIGIN;
        }
        if (exact.contains(origin.key())) {
            return ALLOWED;
        }
        for (OriginPattern wildcard : wildcards) {
            if (wildcard.matches(origin)) {
                return ALLOWED;
            }
        }
        return DENIED;
    }
}
