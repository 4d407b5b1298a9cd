package io.wsguard.admin;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The page {@code GET /} serves: one self-contained HTML file (inline script, inline SVG, no
 * external resources), read once from the class path.
 *
 * <p>Its Content-Security-Policy allows exactly that file's inline script and style, by hash, and
 * network calls to this origin only: the page handles a bearer token and renders subjects taken
 * from JWTs, so an injected script must have nowhere to run and nowhere to send it.
 */
record Dashboard(String html, String contentSecurityPolicy) {

    private static final String RESOURCE = "dashboard.html";

    static Dashboard load() {
        final String html;
        try (InputStream in = Dashboard.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(
                        RESOURCE + " is missing from the class path next to " + Dashboard.class);
            }
            html = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        final String csp = "default-src 'none'; "
                + "script-src " + InlineCsp.hashOf(html, "<script>", "</script>") + "; "
                + "style-src " + InlineCsp.hashOf(html, "<style>", "</style>") + "; "
                + "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                + "frame-ancestors 'none'";
        return new Dashboard(html, csp);
    }
}
