package io.wsguard.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.wsguard.testing.TestCerts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one PEM reader: what it returns, and the {@link PemException.Problem} its callers word their messages by. */
class PemTest {

    @TempDir
    static Path dir;

    static TestCerts.Issued leaf;

    @BeforeAll
    static void certificates() {
        leaf = TestCerts.authority(dir, "ca")
                .issue(dir, "leaf", List.of("localhost"), TestCerts.KeyType.EC, TestCerts.KeyFormat.SEC1);
    }

    @Test
    void readsTheCertificateAndTheKeyThatBelongTogether() {
        assertThat(Pem.certificates(leaf.certificate())).containsExactly(leaf.x509());
        assertThat(Pem.belongTogether(
                        Pem.privateKey(leaf.privateKey()), leaf.x509().getPublicKey()))
                .isTrue();
        assertThat(Pem.publicKey(leaf.certificate())).isEqualTo(leaf.x509().getPublicKey());
    }

    @Test
    void readsAPublicKeyBlock() throws Exception {
        final byte[] spki = leaf.keyPair().getPublic().getEncoded();
        final String body = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(spki);
        final Path file = Files.writeString(
                dir.resolve("leaf.pub"), "-----BEGIN PUBLIC KEY-----\n" + body + "\n-----END PUBLIC KEY-----\n");
        assertThat(Pem.publicKey(file)).isEqualTo(leaf.x509().getPublicKey());
    }

    @Test
    void skipsTheEcParametersThatOpensslWritesBeforeTheKey() throws Exception {
        final Path withParameters = Files.writeString(
                dir.resolve("with-parameters.key"),
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
                        + Files.readString(leaf.privateKey()));

        assertThat(Pem.belongTogether(
                        Pem.privateKey(withParameters), leaf.x509().getPublicKey()))
                .isTrue();
    }

    @Test
    void aMissingFileIsMissing() {
        final Path missing = dir.resolve("nope.pem");
        assertProblem(() -> Pem.privateKey(missing), missing, PemException.Problem.MISSING, "does not exist");
        assertProblem(() -> Pem.certificates(missing), missing, PemException.Problem.MISSING, "does not exist");
        assertProblem(() -> Pem.publicKey(missing), missing, PemException.Problem.MISSING, "does not exist");
    }

    @Test
    void textWithoutPemBlocksHoldsNothing() throws Exception {
        final Path text = Files.writeString(dir.resolve("text.pem"), "hello\n");
        assertProblem(() -> Pem.privateKey(text), text, PemException.Problem.ABSENT, "holds no private key");
        assertProblem(() -> Pem.certificates(text), text, PemException.Problem.ABSENT, "holds no certificate");
        assertProblem(() -> Pem.publicKey(text), text, PemException.Problem.ABSENT, "holds no public key");
    }

    @Test
    void theWrongKindOfObjectIsNamed() {
        assertProblem(
                () -> Pem.privateKey(leaf.certificate()),
                leaf.certificate(),
                PemException.Problem.WRONG_KIND,
                "is a certificate");
        assertProblem(
                () -> Pem.publicKey(leaf.privateKey()),
                leaf.privateKey(),
                PemException.Problem.WRONG_KIND,
                "holds a private key");
    }

    @Test
    void aBlockWithGarbageInsideIsMalformed() throws Exception {
        final Path garbage = Files.writeString(
                dir.resolve("garbage.pem"), "-----BEGIN PUBLIC KEY-----\nAAAAAAAAAAAA\n-----END PUBLIC KEY-----\n");
        assertProblem(() -> Pem.publicKey(garbage), garbage, PemException.Problem.MALFORMED, "BEGIN PUBLIC KEY");
    }

    @Test
    void aChainCaughtInsideTheBeginLineOfItsSecondBlockIsTruncated() throws Exception {
        // A renewal writing the leaf, then the CA: PEMParser reads the leaf and stops at the cut without a word.
        final Path cut =
                Files.writeString(dir.resolve("cut.crt"), Files.readString(leaf.certificate()) + "-----BEGIN CERTIF");
        assertProblem(() -> Pem.certificates(cut), cut, PemException.Problem.TRUNCATED, "ends inside a PEM block");
    }

    private static void assertProblem(Runnable read, Path file, PemException.Problem problem, String words) {
        assertThatThrownBy(read::run).isInstanceOfSatisfying(PemException.class, e -> {
            assertThat(e.problem()).isEqualTo(problem);
            assertThat(e.file()).isEqualTo(file);
            assertThat(e.getMessage())
                    .contains("'" + file + "'")
                    .contains(words)
                    .contains("expected");
        });
    }
}
