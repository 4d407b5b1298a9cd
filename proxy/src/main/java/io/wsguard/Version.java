package io.wsguard;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * The build's version: the pom's {@code project.version} and the short git commit it was built from,
 * written into {@code io/wsguard/version.properties} by the build (proxy/pom.xml). One source for
 * {@code --version}, {@code wsguard_build_info}, {@code /healthz} and the audit log's config lines.
 *
 * <p>A build outside a git checkout (a source tarball, a container build without {@code .git}) has
 * the commit {@value #UNKNOWN}; so does any value the build left unfiltered.
 */
public final class Version {

    /** What {@link #commit()} (or {@link #number()}) says when the build could not tell. */
    public static final String UNKNOWN = "unknown";

    private static final String RESOURCE = "version.properties";
    private static final String NUMBER = read("version");
    private static final String COMMIT = read("commit");

    private Version() {}

    /** The release version, e.g. {@code 0.1.0}. */
    public static String number() {
        return NUMBER;
    }

    /** The git commit the build came from, abbreviated (e.g. {@code f6b88b2}), or {@value #UNKNOWN}. */
    public static String commit() {
        return COMMIT;
    }

    /** {@code wsguard 0.1.0 (commit f6b88b2)}: how the CLI and {@code /healthz} name this build. */
    public static String describe() {
        return "wsguard " + NUMBER + " (commit " + COMMIT + ")";
    }

    private static String read(String key) {
        final Properties properties = new Properties();
        try (InputStream in = Version.class.getResourceAsStream(RESOURCE)) {
            if (in != null) {
                properties.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read io/wsguard/" + RESOURCE + " from the jar", e);
        }
        final String value = properties.getProperty(key, "").trim();
        // A "${...}" the build left as it was: resources copied by something other than Maven (an IDE).
        return value.isEmpty() || value.contains("${") ? UNKNOWN : value;
    }
}
