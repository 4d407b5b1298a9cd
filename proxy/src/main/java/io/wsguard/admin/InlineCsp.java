package io.wsguard.admin;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;

/**
 * Content-Security-Policy hashes for the self-contained pages wsguard serves (the dashboard and the
 * demo chat): their one inline script and style are allowed by hash, nothing else.
 */
public final class InlineCsp {
    private InlineCsp() {}

    /** {@code 'sha256-…'} of the text between the first {@code open} and the next {@code close}. */
    public static String hashOf(String html, String open, String close) {
        final int start = html.indexOf(open);
        final int end = html.indexOf(close, start + 1);
        if (start < 0 || end < 0) {
            throw new IllegalStateException("page has no " + open + " element");
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
