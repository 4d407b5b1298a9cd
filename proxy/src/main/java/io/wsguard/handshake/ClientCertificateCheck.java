package io.wsguard.handshake;

import io.wsguard.check.Reason;
import io.wsguard.check.Verdict;
import java.util.concurrent.CompletionStage;

/**
 * {@code auth.clientCertificate: required}: the client must have shown a certificate in the TLS
 * handshake. TLS itself verified it against the listener's {@code clientCAs}; a listener with
 * {@code clientAuth: optional} also lets clients without one in, and this refuses them on the routes
 * that need one (403 {@code client_certificate_missing}).
 */
final class ClientCertificateCheck implements HandshakeCheck {

    static final ClientCertificateCheck INSTANCE = new ClientCertificateCheck();

    private ClientCertificateCheck() {}

    @Override
    public CompletionStage<Verdict> check(HandshakeRequest request) {
        if (request.clientCertificate() != null) {
            return ALLOWED;
        }
        return HandshakeCheck.deny(
                Reason.CLIENT_CERTIFICATE_MISSING,
                request.isSecure()
                        ? "no client certificate in the TLS handshake"
                        : "no client certificate: the connection is not TLS");
    }
}
