package io.wsguard.metrics;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import javax.security.auth.x500.X500Principal;

/**
 * {@code wsguard_tls_certificate_expiry_timestamp_seconds{listener,names,serial,subject}}: when each
 * certificate a TLS listener serves stops being valid (its {@code notAfter}, in seconds since the
 * epoch), so that an alert can fire days before a renewal that did not happen.
 *
 * <p>{@link #serve} replaces a listener's rows with what its key store holds now: called when the
 * listener starts and after each certificate reload, so a certificate that is no longer served
 * has no series. Thread-safe.
 */
public final class CertificateExpiry {

    /** The SAN type number of a DNS name (RFC 5280 §4.2.1.6). */
    private static final int DNS_NAME = 2;

    private final MultiGauge gauge;
    /** Each listener's rows, by listener name; guarded by this. */
    private final Map<String, List<MultiGauge.Row<?>>> rows = new TreeMap<>();

    CertificateExpiry(MeterRegistry registry) {
        gauge = MultiGauge.builder("wsguard.tls.certificate.expiry.timestamp")
                .description(
                        "When each certificate a TLS listener serves expires (notAfter), in seconds since the epoch")
                .baseUnit("seconds")
                .register(registry);
    }

    /**
     * {@code listener} now serves the leaf certificates of {@code keyStore}'s key entries, and only
     * those. Entries that cannot be read are left out.
     */
    public void serve(String listener, KeyStore keyStore) {
        final List<MultiGauge.Row<?>> served = new ArrayList<>();
        for (X509Certificate certificate : leaves(keyStore)) {
            final double notAfter = certificate.getNotAfter().toInstant().getEpochSecond();
            served.add(MultiGauge.Row.of(
                    Tags.of(
                            "listener", listener,
                            "subject", certificate.getSubjectX500Principal().getName(X500Principal.RFC2253),
                            "names", dnsNames(certificate),
                            "serial", certificate.getSerialNumber().toString(16)),
                    notAfter));
        }
        synchronized (this) {
            rows.put(listener, served);
            final List<MultiGauge.Row<?>> all = new ArrayList<>();
            rows.values().forEach(all::addAll);
            // overwrite: rows of certificates no longer served are removed from the registry.
            gauge.register(all, true);
        }
    }

    private static List<X509Certificate> leaves(KeyStore keyStore) {
        final List<X509Certificate> leaves = new ArrayList<>();
        if (keyStore == null) {
            return leaves;
        }
        try {
            for (String alias : Collections.list(keyStore.aliases())) {
                if (!keyStore.isKeyEntry(alias)) {
                    continue;
                }
                final Certificate certificate = keyStore.getCertificate(alias);
                if (certificate instanceof X509Certificate x509) {
                    leaves.add(x509);
                }
            }
        } catch (GeneralSecurityException e) {
            // A key store not loaded has no aliases to show; the listener's own start reports it.
            return leaves;
        }
        return leaves;
    }

    /** The DNS names of the subject alternative names, comma-separated and sorted; empty when there are none. */
    private static String dnsNames(X509Certificate certificate) {
        final Collection<List<?>> names;
        try {
            names = certificate.getSubjectAlternativeNames();
        } catch (CertificateParsingException e) {
            return "";
        }
        if (names == null) {
            return "";
        }
        return names.stream()
                .filter(name -> name.size() == 2 && Integer.valueOf(DNS_NAME).equals(name.get(0)))
                .map(name -> String.valueOf(name.get(1)))
                .sorted()
                .collect(Collectors.joining(","));
    }
}
