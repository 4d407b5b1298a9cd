package io.wsguard.bench.jmh;

import io.wsguard.handshake.HandshakeRequest;
import java.lang.reflect.Proxy;
import java.util.Map;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpURI;
import org.eclipse.jetty.server.Request;

/**
 * Upgrade requests for the JMH benchmarks without a server: a {@link Request.Wrapper} that answers
 * {@code getHeaders()} and {@code getHttpURI()} itself, from immutable {@link HttpFields} like the
 * ones Jetty's parser builds. These two are all the origin and token checks read, and the calls
 * are ordinary virtual calls. The wrapped request is a {@link Proxy} that throws on any call: it only
 * satisfies the wrapper's non-null check, and a check reading anything else would fail loudly.
 */
final class BenchRequests {

    private static final Request NOTHING = (Request) Proxy.newProxyInstance(
            Request.class.getClassLoader(), new Class<?>[] {Request.class}, (proxy, method, args) -> {
                throw new UnsupportedOperationException("benchmark request: " + method.getName());
            });

    private BenchRequests() {}

    /** A Jetty request for {@code wss://127.0.0.1/secure} with these headers (in order). */
    static Request request(Map<String, String> headers) {
        final HttpFields.Mutable fields = HttpFields.build();
        fields.add("Host", "127.0.0.1:18443");
        fields.add("Upgrade", "websocket");
        fields.add("Connection", "Upgrade");
        fields.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        fields.add("Sec-WebSocket-Version", "13");
        headers.forEach(fields::add);
        final HttpFields immutable = fields.asImmutable();
        final HttpURI uri = HttpURI.from("https://127.0.0.1:18443/secure");
        return new Request.Wrapper(NOTHING) {
            @Override
            public HttpFields getHeaders() {
                return immutable;
            }

            @Override
            public HttpURI getHttpURI() {
                return uri;
            }
        };
    }

    /** What the proxy builds per upgrade: a fresh {@link HandshakeRequest} around the Jetty request. */
    static HandshakeRequest handshake(Request request) {
        return new HandshakeRequest(request, "127.0.0.1", "c1");
    }
}
