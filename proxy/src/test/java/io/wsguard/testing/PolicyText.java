package io.wsguard.testing;

import java.nio.file.Path;

/**
 * The whole policy file a test runs, from the parts a test cares about: one listener on 127.0.0.1
 * port 0, an audit file in {@link #dir()}, optional top-level YAML and the routes. Both the
 * in-process {@link RunningProxy} and the integration tests' {@code WsguardProcess} write it, so a
 * new required key is added here once.
 */
public final class PolicyText {

    private final Path dir;
    private String routes = "";
    private String extra = "";
    private String auditOptions = "";
    private String auditSection;
    private Path certificate;
    private Path privateKey;

    private PolicyText(Path dir) {
        this.dir = dir;
    }

    /** A policy whose file, audit log and anything else the test writes live in {@code dir}. */
    public static PolicyText in(Path dir) {
        return new PolicyText(dir);
    }

    /** {@code routes:} as a YAML list, written unindented; it is indented under the key here. */
    public PolicyText routes(String yamlList) {
        this.routes = yamlList;
        return this;
    }

    /** More top-level YAML, whole lines ending in a newline, e.g. {@code "proxy: { drainTimeout: 5s }\n"}. */
    public PolicyText extra(String topLevelYaml) {
        this.extra = topLevelYaml;
        return this;
    }

    /** The whole {@code audit:} map in flow style, instead of the file in {@link #dir()} (another sink). */
    public PolicyText audit(String flowMap) {
        this.auditSection = flowMap;
        return this;
    }

    /** More {@code audit:} keys in flow style, e.g. {@code "sampleBytes: 16"}. */
    public PolicyText auditOptions(String flowKeys) {
        this.auditOptions = flowKeys;
        return this;
    }

    /** Serves the listener over TLS with this PEM pair instead of plain ws. */
    public PolicyText tls(Path certificatePem, Path privateKeyPem) {
        this.certificate = certificatePem;
        this.privateKey = privateKeyPem;
        return this;
    }

    public Path dir() {
        return dir;
    }

    /** Where the policy's file sink writes. */
    public Path audit() {
        return dir.resolve("audit.jsonl");
    }

    /** The YAML. */
    public String text() {
        final StringBuilder yaml = new StringBuilder("version: 1\nlisteners:\n  - host: 127.0.0.1\n    port: 0\n");
        if (certificate != null) {
            yaml.append("    tls: { certificate: ")
                    .append(certificate)
                    .append(", privateKey: ")
                    .append(privateKey)
                    .append(" }\n");
        }
        if (auditSection != null) {
            yaml.append("audit: ").append(auditSection).append('\n');
        } else {
            yaml.append("audit: { sink: file, path: ").append(audit());
            if (!auditOptions.isEmpty()) {
                yaml.append(", ").append(auditOptions);
            }
            yaml.append(" }\n");
        }
        yaml.append(extra);
        yaml.append("routes:\n").append(routes.indent(2));
        return yaml.toString();
    }
}
