package io.wsguard.handshake;

import io.wsguard.auth.JwtResult;
import io.wsguard.auth.JwtVerifier;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import java.util.Locale;
import java.util.concurrent.CompletionStage;

/**
 * {@code auth.jwt}: finds the token where the route says, verifies it and, when it holds, records
 * who the client is for the checks after it (connection caps per subject), the upstream headers
 * ({@code ${jwt.CLAIM}}, and the token itself when the route forwards {@code Authorization}) and
 * the connection (its subject, and its close at expiry).
 *
 * <p>A request carrying more than one credential is refused before any is verified: the upstream,
 * or a framework in front of it, might act on the one wsguard did not verify.
 *
 * <p>The verdict's detail names where the token came from and what was wrong with it, never the
 * token.
 */
final class JwtCheck implements HandshakeCheck {

    private final JwtVerifier verifier;
    private final TokenSources sources;
    private final String missingDetail;
    private final boolean subjectRequired;

    /**
     * @param subjectRequired the route limits per subject ({@code perSubject}): a token without
     *     {@code sub} would be counted against nobody, so it is refused
     */
    JwtCheck(JwtVerifier verifier, TokenSources sources, String sourcesText, boolean subjectRequired) {
        this.verifier = verifier;
        this.sources = sources;
        this.missingDetail = "no token (looked in: " + sourcesText + ")";
        this.subjectRequired = subjectRequired;
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final TokenSources.Credentials credentials = sources.find(request);
        if (credentials == null) {
            return HandshakeCheck.deny(Reason.TOKEN_MISSING, missingDetail);
        }
        if (credentials instanceof TokenSources.Several several) {
            return HandshakeCheck.deny(Reason.TOKEN_INVALID, "more than one credential (" + several.where() + ")");
        }
        final TokenSources.Found found = (TokenSources.Found) credentials;
        final String from = " (token from " + found.kind().name().toLowerCase(Locale.ROOT) + ")";
        return verifier.verify(found.token()).thenApply(result -> {
            if (result instanceof JwtResult.Valid valid) {
                final String subject = valid.principal().subject();
                if (subjectRequired && (subject == null || subject.isEmpty())) {
                    return Verdict.deny(
                            Reason.TOKEN_INVALID,
                            "no sub claim (expected: a subject, which the route's" + " perSubject limits count by)"
                                    + from);
                }
                request.authenticate(valid.principal(), found.token());
                return Verdict.ALLOW;
            }
            final JwtResult.Invalid invalid = (JwtResult.Invalid) result;
            return Verdict.deny(invalid.reason(), invalid.detail() + from);
        });
    }
}
