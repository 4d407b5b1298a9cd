package io.wsguard.handshake;

import io.wsguard.auth.JwtResult;
import io.wsguard.auth.JwtVerifier;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import java.util.concurrent.CompletionStage;

/**
 * {@code auth.jwt}: finds the token where the route says, verifies it and, when it holds, records
 * who the client is for the checks after it (connection caps per subject), the upstream headers
 * ({@code ${jwt.CLAIM}}) and the connection (its subject, and its close at expiry).
 *
 * <p>The verdict's detail names where the token came from and what was wrong with it, never the
 * token.
 */
public final class JwtCheck implements HandshakeCheck {

    private final JwtVerifier verifier;
    private final TokenSources sources;
    private final String missingDetail;

    public JwtCheck(JwtVerifier verifier, TokenSources sources, String sourcesText) {
        this.verifier = verifier;
        this.sources = sources;
        this.missingDetail = "no token (looked in: " + sourcesText + ")";
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final TokenSources.Found found = sources.find(request);
        if (found == null) {
            return HandshakeCheck.deny(Reason.TOKEN_MISSING, missingDetail);
        }
        return verifier.verify(found.token()).thenApply(result -> {
            if (result instanceof JwtResult.Valid valid) {
                request.authenticate(valid.principal());
                return Verdict.ALLOW;
            }
            final JwtResult.Invalid invalid = (JwtResult.Invalid) result;
            return Verdict.deny(invalid.reason(), invalid.detail() + " (token from " + found.kind().name().toLowerCase(java.util.Locale.ROOT) + ")");
        });
    }
}
