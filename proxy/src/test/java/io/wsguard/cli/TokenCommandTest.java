package io.wsguard.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.crypto.MACVerifier;
import com.nimbusds.jose.crypto.RSASSAVerifier;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.demo.DevCerts;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.interfaces.RSAPublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class TokenCommandTest {

    static final String SECRET = "a token command test secret, 32+ bytes";

    @TempDir
    Path dir;

    private record Run(int exit, String out, String err) {}

    private static Run run(String... args) {
        final CommandLine cli = WsguardCommand.commandLine();
        final StringWriter out = new StringWriter();
        final StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        final int exit = cli.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    @Test
    void mintsAnHs256TokenWithTheGivenClaimsAndPrintsOnlyIt() throws Exception {
        final Run run = run(
                "token",
                "--secret",
                SECRET,
                "--sub",
                "alice",
                "--iss",
                "https://id.test/",
                "--aud",
                "chat-api",
                "--aud",
                "admin-api",
                "--ttl",
                "90s",
                "--kid",
                "k1",
                "--claim",
                "scope=chat:read chat:write");
        assertThat(run.exit()).isZero();
        assertThat(run.out().lines().toList()).hasSize(1);
        final SignedJWT jwt = SignedJWT.parse(run.out().strip());
        assertThat(jwt.getHeader().getAlgorithm()).isEqualTo(JWSAlgorithm.HS256);
        assertThat(jwt.getHeader().getKeyID()).isEqualTo("k1");
        assertThat(jwt.verify(new MACVerifier(SECRET))).isTrue();
        assertThat(jwt.getJWTClaimsSet().getSubject()).isEqualTo("alice");
        assertThat(jwt.getJWTClaimsSet().getIssuer()).isEqualTo("https://id.test/");
        assertThat(jwt.getJWTClaimsSet().getAudience()).containsExactly("chat-api", "admin-api");
        assertThat(jwt.getJWTClaimsSet().getStringClaim("scope")).isEqualTo("chat:read chat:write");
        final Duration ttl = Duration.between(
                Instant.now(), jwt.getJWTClaimsSet().getExpirationTime().toInstant());
        assertThat(ttl).isBetween(Duration.ofSeconds(80), Duration.ofSeconds(91));
    }

    @Test
    void signsWithAPemKeyThatTheMatchingPublicKeyVerifies() throws Exception {
        final DevCerts.JwtKeyPaths keys = DevCerts.ensureJwtKey(dir);
        final Run run = run("token", "--key", keys.privateKey().toString(), "--sub", "bob");
        assertThat(run.exit()).as(run.err()).isZero();
        final SignedJWT jwt = SignedJWT.parse(run.out().strip());
        assertThat(jwt.getHeader().getAlgorithm()).isEqualTo(JWSAlgorithm.RS256);
        final RSAPublicKey publicKey = JWK.parseFromPEMEncodedObjects(Files.readString(keys.publicKey()))
                .toRSAKey()
                .toRSAPublicKey();
        assertThat(jwt.verify(new RSASSAVerifier(publicKey))).isTrue();
    }

    @Test
    void badInputIsOneLineOnStderrAndExit2() {
        final Run shortSecret = run("token", "--secret", "s3cr3t-value");
        assertThat(shortSecret.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(shortSecret.out()).isEmpty();
        assertThat(shortSecret.err())
                .startsWith("wsguard token: ")
                .doesNotContain("s3cr3t-value")
                .doesNotContain("Exception");

        final Run missingKey = run("token", "--key", dir.resolve("nope.pem").toString());
        assertThat(missingKey.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(missingKey.err()).contains("nope.pem").doesNotContain("\tat ");

        final Run both = run("token", "--secret", SECRET, "--key", "x.pem");
        assertThat(both.exit()).isEqualTo(ExitCode.INVALID);
        assertThat(List.of(both.err().split("\n"))).isNotEmpty();
    }
}
