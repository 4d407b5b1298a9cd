package io.wsguard.handshake;

import static java.util.Objects.requireNonNull;

import io.wsguard.auth.Principal;
import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import io.wsguard.cluster.Revocations;
import java.util.concurrent.CompletionStage;

/**
 * {@code POST /admin/revoke}: refuses a token that verified but whose subject or {@code jti} an
 * operator revoked, 401 {@code token_revoked}, until the revocation ends. Runs right after the token
 * check, before the connection caps take a slot. A lookup in the instance's mirror of the
 * revocations in force: no Redis call, no allocation when nothing is revoked.
 */
final class RevocationCheck implements HandshakeCheck {

    private final Revocations revocations;

    RevocationCheck(Revocations revocations) {
        this.revocations = requireNonNull(revocations, "revocations");
    }

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        final Principal principal = request.principal().orElse(null);
        if (principal == null) {
            // The token check refused it (monitor mode lets it on), or the route has no token.
            return ALLOWED;
        }
        final Revocations.InForce revoked = revocations.find(principal.subject(), principal.claimText("jti"));
        return revoked == null ? ALLOWED : HandshakeCheck.deny(Reason.TOKEN_REVOKED, revoked.describe());
    }
}
