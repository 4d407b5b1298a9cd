package io.wsguard.bench;

import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import javax.crypto.KeyAgreement;

/**
 * What the JVM's own providers spend on the public-key operations of one full TLS 1.3 handshake on
 * the server side: signing the handshake (RSA-2048 with PSS, or ECDSA P-256) and the X25519 key
 * exchange (a key pair and one agreement). Compare with {@code openssl speed rsa2048 ecdsap256
 * ecdhx25519}, which is what NGINX spends on the same operations: handshake rates of a JVM server are
 * bounded by these figures whatever the server does around them.
 *
 * <pre>crypto [--rounds 3]</pre>
 */
final class CryptoCost {

    private static final byte[] TRANSCRIPT_HASH = new byte[48];

    private CryptoCost() {}

    static void print(Args args) throws GeneralSecurityException {
        final KeyPairGenerator rsa = KeyPairGenerator.getInstance("RSA");
        rsa.initialize(2048);
        final KeyPair rsaKeys = rsa.generateKeyPair();
        final KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
        ec.initialize(new ECGenParameterSpec("secp256r1"));
        final KeyPair ecKeys = ec.generateKeyPair();
        final KeyPairGenerator x25519 = KeyPairGenerator.getInstance("X25519");
        final PublicKey clientShare = x25519.generateKeyPair().getPublic();
        System.out.println(System.getProperty("java.vm.name") + " " + System.getProperty("java.version")
                + ": µs per operation (the first round includes JIT compilation)");
        final int rounds = args.integer("rounds", 3);
        for (int round = 1; round <= rounds; round++) {
            final double rsaSign = microsPerOp(300, () -> {
                final Signature signature = Signature.getInstance("RSASSA-PSS");
                signature.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
                signature.initSign(rsaKeys.getPrivate());
                signature.update(TRANSCRIPT_HASH);
                signature.sign();
            });
            final double ecdsaSign = microsPerOp(1000, () -> {
                final Signature signature = Signature.getInstance("SHA256withECDSA");
                signature.initSign(ecKeys.getPrivate());
                signature.update(TRANSCRIPT_HASH);
                signature.sign();
            });
            final double keyExchange = microsPerOp(1000, () -> {
                final KeyPair serverShare = x25519.generateKeyPair();
                final KeyAgreement agreement = KeyAgreement.getInstance("X25519");
                agreement.init(serverShare.getPrivate());
                agreement.doPhase(clientShare, true);
                agreement.generateSecret();
            });
            System.out.printf(
                    "round %d: RSA-2048 PSS sign %.0f, ECDSA P-256 sign %.0f, X25519 key pair + agreement %.0f%n",
                    round, rsaSign, ecdsaSign, keyExchange);
        }
    }

    private interface Operation {
        void run() throws GeneralSecurityException;
    }

    private static double microsPerOp(int count, Operation operation) throws GeneralSecurityException {
        final long start = System.nanoTime();
        for (int i = 0; i < count; i++) {
            operation.run();
        }
        return (System.nanoTime() - start) / 1e3 / count;
    }
}
