package io.wsguard.tls;

import io.wsguard.policy.TlsPolicy;
import io.wsguard.testing.TestCerts;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.ssl.SslContextFactory;

/** Real TLS both sides: a Jetty server on 127.0.0.1, port 0, and a JDK {@link SSLSocket} client. */
final class TlsFixture {

    private TlsFixture() {}

    /** A PEM-pair policy with the default protocols and no client certificates. */
    static TlsPolicy pemPolicy(List<TestCerts.Issued> pairs) {
        return new TlsPolicy(
                pairs.stream()
                        .map(p -> new TlsPolicy.KeyPairPolicy(p.certificate(), p.privateKey()))
                        .toList(),
                Optional.empty(),
                Optional.empty(),
                List.of("TLSv1.3", "TLSv1.2"),
                TlsPolicy.ClientAuth.NONE,
                Optional.empty());
    }

    /** A started server answering every request with 200 {@code ok}. */
    static Server start(SslContextFactory.Server ssl) throws Exception {
        return start(ssl, new HttpConfiguration());
    }

    /** Same, without Jetty's check that Host is a name of the certificate served. */
    static Server startWithoutSniHostCheck(SslContextFactory.Server ssl) throws Exception {
        final HttpConfiguration config = new HttpConfiguration();
        config.addCustomizer(new SecureRequestCustomizer(false));
        return start(ssl, config);
    }

    private static Server start(SslContextFactory.Server ssl, HttpConfiguration config) throws Exception {
        final Server server = new Server();
        final ServerConnector connector = new ServerConnector(
                server, new SslConnectionFactory(ssl, "http/1.1"), new HttpConnectionFactory(config));
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        server.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) {
                response.setStatus(200);
                Content.Sink.write(response, true, "ok", callback);
                return true;
            }
        });
        server.start();
        return server;
    }

    static int port(Server server) {
        return ((ServerConnector) server.getConnectors()[0]).getLocalPort();
    }

    /**
     * A client context trusting {@code ca}, presenting {@code clientCert} if not null. Use a new one
     * per connection where the certificate served matters: the JDK client resumes a cached session
     * to the same host and port, server name included, and no certificate is chosen on resumption.
     */
    static SSLContext client(X509Certificate ca, TestCerts.Issued clientCert) throws Exception {
        final KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", ca);
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManagerFactory kmf = null;
        if (clientCert != null) {
            final KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("client", clientCert.keyPair().getPrivate(), "pw".toCharArray(), new X509Certificate[] {
                clientCert.x509()
            });
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, "pw".toCharArray());
        }
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return context;
    }

    /**
     * A completed handshake to 127.0.0.1:port, sending {@code sni} as server name (none if null).
     * Connecting to the IP literal means the JDK adds no server name of its own.
     */
    static SSLSocket handshake(SSLContext context, int port, String sni, String... protocols) throws IOException {
        final SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket("127.0.0.1", port);
        socket.setSoTimeout(10_000);
        final SSLParameters params = socket.getSSLParameters();
        params.setServerNames(sni == null ? List.<SNIServerName>of() : List.<SNIServerName>of(new SNIHostName(sni)));
        if (protocols.length > 0) {
            params.setProtocols(protocols);
        }
        socket.setSSLParameters(params);
        socket.startHandshake();
        return socket;
    }

    static BigInteger serial(SSLSocket socket) throws IOException {
        return ((X509Certificate) socket.getSession().getPeerCertificates()[0]).getSerialNumber();
    }

    /** One keep-alive {@code GET /} with {@code Host: localhost}; returns {@code "STATUS BODY"}. */
    static String get(SSLSocket socket) throws IOException {
        return get(socket, "localhost");
    }

    /**
     * Same with another Host. Jetty's {@code SecureRequestCustomizer} (added by default) answers 400
     * "Invalid SNI" when Host is not a name of the certificate served (pitfall 8).
     */
    static String get(SSLSocket socket, String host) throws IOException {
        final OutputStream out = socket.getOutputStream();
        out.write(("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
        final InputStream in = socket.getInputStream();
        final String head = readHead(in);
        final String status = head.substring(9, 12);
        int length = 0;
        for (String line : head.split("\r\n", -1)) {
            if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring(15).trim());
            }
        }
        final byte[] body = in.readNBytes(length);
        return status + " " + new String(body, StandardCharsets.UTF_8);
    }

    private static String readHead(InputStream in) throws IOException {
        final ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        while (matched < 4) {
            final int b = in.read();
            if (b < 0) {
                throw new IOException("connection closed after " + head.size() + " bytes of response head");
            }
            head.write(b);
            matched = (b == '\r' && (matched == 0 || matched == 2)) || (b == '\n' && (matched == 1 || matched == 3))
                    ? matched + 1
                    : (b == '\r' ? 1 : 0);
        }
        return head.toString(StandardCharsets.US_ASCII);
    }
}
