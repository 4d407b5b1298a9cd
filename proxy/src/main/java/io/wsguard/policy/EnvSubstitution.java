package io.wsguard.policy;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code ${NAME}} and {@code ${NAME:-default}} in scalar values (docs/policy.md). It runs on a scalar's text
 * after the YAML is parsed, never on the raw file, so a variable's value cannot add keys or lists.
 * The value is not scanned again: {@code ${A}} whose value is {@code ${B}} stays {@code ${B}}.
 *
 * <p>{@code ${jwt.CLAIM}} is not a variable: it is left as written, for the proxy to expand per
 * connection with verified claims, and only where the caller allows it ({@code upstream.headers.set}).
 * So are {@code ${tls.subject}} and {@code ${tls.fingerprint}}, the verified client certificate's.
 */
final class EnvSubstitution {

    private static final Pattern REFERENCE = Pattern.compile("\\$\\{([^}]*)}");
    private static final Pattern VARIABLE = Pattern.compile("([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", Pattern.DOTALL);
    private static final Pattern JWT_CLAIM = Pattern.compile("jwt\\.[A-Za-z0-9_:.-]+");
    private static final Pattern TLS_FIELD = Pattern.compile("tls\\.(subject|fingerprint)");

    private final Map<String, String> env;

    EnvSubstitution(Map<String, String> env) {
        this.env = env;
    }

    /**
     * The text with every variable replaced. The exception's message names the variable, never
     * its value (values may be secrets).
     */
    String substitute(String text, boolean allowJwtClaims) {
        if (text.indexOf("${") < 0) {
            return text;
        }
        final Matcher m = REFERENCE.matcher(text);
        final StringBuilder out = new StringBuilder();
        while (m.find()) {
            final String inside = m.group(1);
            final String replacement;
            if (inside.startsWith("jwt.")) {
                if (!JWT_CLAIM.matcher(inside).matches()) {
                    throw new IllegalArgumentException(
                            "'${" + inside + "}' is not a claim reference (expected: like ${jwt.sub})");
                }
                if (!allowJwtClaims) {
                    throw new IllegalArgumentException(
                            "'${" + inside + "}' is expanded only in upstream.headers.set values"
                                    + " (expected: an environment variable like ${NAME} or ${NAME:-default})");
                }
                replacement = m.group();
            } else if (inside.startsWith("tls.")) {
                if (!TLS_FIELD.matcher(inside).matches()) {
                    throw new IllegalArgumentException("'${" + inside + "}' is not a client certificate field"
                            + " (expected: ${tls.subject} or ${tls.fingerprint})");
                }
                if (!allowJwtClaims) {
                    throw new IllegalArgumentException(
                            "'${" + inside + "}' is expanded only in upstream.headers.set values"
                                    + " (expected: an environment variable like ${NAME} or ${NAME:-default})");
                }
                replacement = m.group();
            } else {
                final Matcher v = VARIABLE.matcher(inside);
                if (!v.matches()) {
                    throw new IllegalArgumentException("'${" + inside + "}' is not a variable reference"
                            + " (expected: ${NAME} or ${NAME:-default})");
                }
                final String value = env.get(v.group(1));
                if (value != null) {
                    replacement = value;
                } else if (v.group(2) != null) {
                    replacement = v.group(2);
                } else {
                    throw new IllegalArgumentException("environment variable " + v.group(1) + " is not set"
                            + " (expected: set it, or give a default: ${" + v.group(1) + ":-default})");
                }
            }
            m.appendReplacement(out, Matcher.quoteReplacement(replacement));
        }
        m.appendTail(out);
        return out.toString();
    }
}
