package io.wsguard.admin;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;

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
                throw new IllegalStateException(RESOURCE + " is missing from the class path next to " + Dashboard.class);
            }
            html = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        final String csp = "default-src 'none'; "
                           + "script-src " + hashOf(html, "<script>", "</script>") + "; "
                           + "style-src " + hashOf(html, "<style>", "</style>") + "; "
                           + "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                           + "frame-ancestors 'none'";
        return new Dashboard(html, csp);
    }

    /** {@code 'sha256-…'} of the text between the first {@code open} and the next {@code close}. */
    static String hashOf(String html, String open, String close) {
        final int start = html.indexOf(open);
        final int end = html.indexOf(close, start + 1);
        if (start < 0 || end < 0) {
            throw new IllegalStateException(RESOURCE + " has no " + open + " element");
        }
        try {
            final byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(html.substring(start + open.length(), end).getBytes(StandardCharsets.UTF_8));
            return "'sha256-" + Base64.getEncoder().encodeToString(digest) + "'";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }
}
