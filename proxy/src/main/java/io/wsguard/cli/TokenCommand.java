package io.wsguard.cli;

import io.wsguard.auth.TokenMinter;
import io.wsguard.policy.Secret;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code wsguard token}: mints a signed JWT for testing a route (README, CLI) and prints only the
 * token on stdout, so that {@code TOKEN=$(wsguard token ...)} works. Problems go to stderr, exit 2.
 */
@Command(name = "token", description = "Mint a signed JWT for testing and print only it.")
public final class TokenCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @ArgGroup(exclusive = true, multiplicity = "1")
    KeySource keySource;

    static final class KeySource {
        @Option(
                names = "--secret",
                paramLabel = "S",
                description = "HS256 secret, at least 32 bytes (prefer --secret-env: arguments show in ps)")
        String secret;

        @Option(
                names = "--secret-env",
                paramLabel = "NAME",
                description = "read the HS256 secret from this environment variable")
        String secretEnv;

        @Option(
                names = "--key",
                paramLabel = "PEM",
                description = "PKCS#8 private key: RSA (RS256), EC P-256/384/521 (ES256/384/512) or Ed25519 (EdDSA)")
        Path key;
    }

    @Option(
            names = "--alg",
            paramLabel = "ALG",
            description = "signing algorithm, when not the key's default (e.g. PS256)")
    String algorithm;

    @Option(names = "--kid", description = "key id header")
    String kid;

    @Option(names = "--sub", description = "subject")
    String subject;

    @Option(names = "--iss", description = "issuer")
    String issuer;

    @Option(names = "--aud", description = "audience (repeatable)")
    List<String> audience = new ArrayList<>();

    @Option(
            names = "--ttl",
            paramLabel = "DURATION",
            defaultValue = "15m",
            converter = AuditCommand.DurationConverter.class,
            description = "lifetime, like 30s, 15m, 12h (default: ${DEFAULT-VALUE})")
    Duration ttl;

    @Option(
            names = "--claim",
            paramLabel = "NAME=VALUE",
            description = "another claim, a string (repeatable), e.g. scope=\"chat:read chat:write\"")
    List<String> claims = new ArrayList<>();

    @Override
    public Integer call() {
        final PrintWriter out = spec.commandLine().getOut();
        final PrintWriter err = spec.commandLine().getErr();
        try {
            Optional<Secret> secret = Optional.ofNullable(keySource.secret).map(Secret::new);
            if (keySource.secretEnv != null) {
                final String value = System.getenv(keySource.secretEnv);
                if (value == null || value.isEmpty()) {
                    throw new IllegalArgumentException("--secret-env: " + keySource.secretEnv + " is not set");
                }
                secret = Optional.of(new Secret(value));
            }
            final Map<String, String> extra = new LinkedHashMap<>();
            for (String claim : claims) {
                final Map.Entry<String, String> entry = TokenMinter.parseClaim(claim);
                extra.put(entry.getKey(), entry.getValue());
            }
            final TokenMinter.Options options = new TokenMinter.Options(
                    secret,
                    Optional.ofNullable(keySource.key),
                    Optional.ofNullable(algorithm),
                    Optional.ofNullable(kid),
                    Optional.ofNullable(subject),
                    Optional.ofNullable(issuer),
                    audience,
                    ttl,
                    extra);
            out.println(TokenMinter.mint(options, Clock.systemUTC()));
            out.flush();
            return ExitCode.OK;
        } catch (IllegalArgumentException e) {
            err.println("wsguard token: " + e.getMessage());
            err.flush();
            return ExitCode.INVALID;
        }
    }
}
