package io.wsguard.policy;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * {@code audit.syslog}: where {@code audit.sink: syslog} sends the audit lines, as RFC 5424 messages.
 *
 * @param transport {@code udp} (RFC 5426), {@code tcp} (RFC 6587 octet counting) or {@code tls} (RFC 5425)
 * @param host the server's name or IP address, resolved at each connection attempt
 * @param port defaults to 514 for {@code udp} and {@code tcp}, 6514 for {@code tls}
 * @param ca {@code tls} only: the PEM certificates the server's chain must lead to; defaults to the
 *        JDK's trusted authorities
 * @param appName APP-NAME, 1 to 48 printable ASCII characters; defaults to {@code wsguard}
 * @param facility defaults to {@code local0}
 * @param bufferSize defaults to {@link #DEFAULT_BUFFER_SIZE}: bytes of messages held while the
 *        server cannot be reached; past it new lines are dropped and counted
 */
public record SyslogPolicy(
        Transport transport,
        String host,
        int port,
        Optional<Path> ca,
        String appName,
        Facility facility,
        long bufferSize) {

    /** 8 MiB: some 15,000 lines of a typical 500 bytes, minutes of a busy proxy's refusals. */
    public static final long DEFAULT_BUFFER_SIZE = 8L << 20;

    public SyslogPolicy {
        requireNonNull(transport, "transport");
        requireNonNull(host, "host");
        requireNonNull(ca, "ca");
        requireNonNull(appName, "appName");
        requireNonNull(facility, "facility");
    }

    /** {@code udp://}, {@code tcp://} or {@code tls://}. */
    public enum Transport {
        UDP(514),
        TCP(514),
        TLS(6514);

        private final int defaultPort;

        Transport(int defaultPort) {
            this.defaultPort = defaultPort;
        }

        /** The IANA port of syslog over this transport. */
        public int defaultPort() {
            return defaultPort;
        }

        /** The address's scheme, e.g. {@code tcp}. */
        public String scheme() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** RFC 5424 §6.2.1's facilities, by the names syslog daemons use. */
    public enum Facility {
        KERN(0),
        USER(1),
        MAIL(2),
        DAEMON(3),
        AUTH(4),
        SYSLOG(5),
        LPR(6),
        NEWS(7),
        UUCP(8),
        CRON(9),
        AUTHPRIV(10),
        FTP(11),
        LOCAL0(16),
        LOCAL1(17),
        LOCAL2(18),
        LOCAL3(19),
        LOCAL4(20),
        LOCAL5(21),
        LOCAL6(22),
        LOCAL7(23);

        private final int code;

        Facility(int code) {
            this.code = code;
        }

        /** The numerical code, which PRI multiplies by 8. */
        public int code() {
            return code;
        }

        /** The policy's spelling, e.g. {@code local0}. */
        public String yaml() {
            return name().toLowerCase(Locale.ROOT);
        }
    }
}
