package io.wsguard.relay;

import io.wsguard.admission.Admission;
import io.wsguard.policy.UpstreamPolicy;
import io.wsguard.route.QueryNames;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.io.ArrayByteBufferPool;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.ClientConnectionFactory;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.Transport;
import org.eclipse.jetty.util.IO;
import org.eclipse.jetty.util.Promise;
import org.eclipse.jetty.util.SocketAddressResolver;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.Configuration;
import org.eclipse.jetty.websocket.core.CoreSession;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.WebSocketComponents;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;

/**
 * Opens the upstream side of a connection: tries the route's targets in the {@link Balancer}'s
 * order, each within {@code connectTimeout} (name resolution, TCP, TLS and the upgrade together),
 * skipping a target that cannot be reached. A target that answers the upgrade with an error status
 * refused this request; that is not a reason to try another one (README, Policy file: 502 {@code upstream_refused}).
 *
 * <p>One per route (and policy version); a Jetty component that owns its socket connector and buffer
 * pool. The executor and scheduler are shared with the server and must be running before this
 * starts, so that stopping it (a reload retired its policy) leaves them alone. The upgrade itself is
 * {@link UpstreamHandshake}'s.
 */
public final class UpstreamConnector extends ContainerLifeCycle {

    private static final Duration COOL_DOWN = Duration.ofSeconds(10);

    private final ClientConnector connector;
    private final SslContextFactory.Client ssl;
    private final SocketAddressResolver resolver;
    private final WebSocketComponents components;
    private final ByteBufferPool pool;
    private final Executor executor;
    private final Scheduler scheduler;
    private final Balancer balancer;
    private final Duration connectTimeout;
    private final Set<String> fixedQueryNames;

    public UpstreamConnector(
            UpstreamPolicy policy, SslContextFactory.Client ssl, Executor executor, Scheduler scheduler) {
        this.pool = new ArrayByteBufferPool();
        this.connector = new ClientConnector();
        connector.setSslContextFactory(ssl);
        connector.setExecutor(executor);
        connector.setScheduler(scheduler);
        connector.setByteBufferPool(pool);
        connector.setConnectTimeout(policy.connectTimeout());
        this.ssl = ssl;
        this.resolver = new SocketAddressResolver.Async(
                executor, scheduler, policy.connectTimeout().toMillis());
        this.components = new WebSocketComponents(null, null, pool, null, null, executor);
        this.executor = executor;
        this.scheduler = scheduler;
        this.balancer = new Balancer(policy.targets(), policy.balance(), COOL_DOWN);
        this.connectTimeout = policy.connectTimeout();
        final Set<String> fixed = new HashSet<>();
        for (URI target : policy.targets()) {
            fixed.addAll(QueryNames.ofQuery(target.getRawQuery()));
        }
        this.fixedQueryNames = Set.copyOf(fixed);
        addBean(connector, true);
        addBean(components, true);
    }

    public Balancer balancer() {
        return balancer;
    }

    /**
     * The readings ({@link QueryNames}) of the query parameters the targets' URIs fix, of every target
     * (whichever takes the connection): a client's query must not name one of them, or frameworks
     * where the last value wins would take the client's.
     */
    public Set<String> fixedQueryNames() {
        return fixedQueryNames;
    }

    /**
     * What to ask the upstream for.
     *
     * @param pathSuffix appended to the target's path (the rest of a prefix route's path), or empty
     * @param query the client's raw query string, or null
     * @param headers request headers to send (already filtered and completed)
     * @param subprotocols offered subprotocols, in the client's order
     * @param extensions offered extensions (only {@code permessage-deflate}, when the route allows it)
     * @param configuration session settings for the upstream side (frame sizes, idle timeout)
     * @param affinity the client socket's selector, for the upstream socket too; null: this connector's own
     */
    public record Request(
            String pathSuffix,
            String query,
            HttpFields headers,
            List<String> subprotocols,
            List<String> extensions,
            Configuration.ConfigurationCustomizer configuration,
            SelectorAffinity affinity) {}

    /**
     * An open upstream session, the target it runs to and how long that target took to answer the
     * upgrade once dialled ({@code connectNanos}: resolution, TCP, TLS, upgrade; earlier targets that
     * failed not included). The target's count goes back with the connection's admission, or,
     * without one, when the caller releases it.
     */
    public record Connected(CoreSession session, Balancer.Target target, long connectNanos) {}

    /**
     * Connects {@code handler} to the first target that takes it. The future fails with
     * {@link UpstreamRefusedException} or {@link UpstreamUnavailableException}.
     */
    public CompletableFuture<Connected> connect(Request request, FrameHandler handler) {
        return connect(request, handler, null);
    }

    /**
     * As {@link #connect(Request, FrameHandler)}, for a connection whose {@code admission} holds
     * the target's count from the moment it is taken: the connection's end gives it back.
     */
    public CompletableFuture<Connected> connect(Request request, FrameHandler handler, Admission admission) {
        final CompletableFuture<Connected> result = new CompletableFuture<>();
        attempt(balancer.attemptOrder(), 0, request, handler, admission, result, null);
        return result;
    }

    private void attempt(
            List<Balancer.Target> order,
            int index,
            Request request,
            FrameHandler handler,
            Admission admission,
            CompletableFuture<Connected> result,
            Throwable lastFailure) {
        if (index == order.size()) {
            final String why = lastFailure == null ? "no target" : describe(lastFailure);
            result.completeExceptionally(new UpstreamUnavailableException(why));
            return;
        }
        final Balancer.Target target = order.get(index);
        final URI uri = targetUri(target.uri(), request.pathSuffix(), request.query());
        final long dialled = System.nanoTime();
        // Both outcomes go to result in the callback: the stage it returns would only repeat them.
        final CompletableFuture<WebSocketCoreSession> unused = upgrade(uri, request, handler)
                .whenComplete((session, failure) -> {
                    if (failure == null) {
                        target.acquire();
                        if (admission != null) {
                            admission.hold(target::release);
                        }
                        result.complete(new Connected(session, target, System.nanoTime() - dialled));
                        return;
                    }
                    if (failure instanceof UpstreamRefusedException refused) {
                        result.completeExceptionally(refused);
                        return;
                    }
                    target.markDown();
                    attempt(order, index + 1, request, handler, admission, result, failure);
                });
    }

    /** One target: resolve, connect (each address in turn), TLS for {@code wss://}, upgrade; all within the timeout. */
    private CompletableFuture<WebSocketCoreSession> upgrade(URI uri, Request request, FrameHandler handler) {
        final CompletableFuture<WebSocketCoreSession> result = new CompletableFuture<>();
        final AtomicReference<UpstreamHandshake> handshake = new AtomicReference<>();
        final Scheduler.Task timeout = scheduler.schedule(
                () -> {
                    final TimeoutException expired =
                            new TimeoutException("no upgrade within " + connectTimeout.toMillis() + " ms");
                    final UpstreamHandshake current = handshake.get();
                    if (current != null) {
                        current.fail(expired);
                    } else {
                        result.completeExceptionally(expired);
                    }
                },
                connectTimeout.toMillis(),
                TimeUnit.MILLISECONDS);
        // Only stops the timer; the caller gets result itself, with its outcome.
        final CompletableFuture<WebSocketCoreSession> unused =
                result.whenComplete((session, failure) -> timeout.cancel());

        final boolean secure = "wss".equalsIgnoreCase(uri.getScheme());
        final UpstreamHandshake.Setup setup =
                new UpstreamHandshake.Setup(uri, request, handler, components, scheduler, pool, result);
        final ClientConnectionFactory plain = (endPoint, context) -> {
            final UpstreamHandshake connection = new UpstreamHandshake(endPoint, executor, setup);
            handshake.set(connection);
            return connection;
        };
        final ClientConnectionFactory factory = secure ? connector.newSslClientConnectionFactory(ssl, plain) : plain;
        final int port = uri.getPort() > 0 ? uri.getPort() : secure ? 443 : 80;
        resolver.resolve(
                uri.getHost(),
                port,
                new ConcurrentHashMap<>(),
                Promise.from(
                        addresses -> connectTo(addresses, 0, factory, request.affinity(), result),
                        result::completeExceptionally));
        return result;
    }

    private void connectTo(
            List<InetSocketAddress> addresses,
            int index,
            ClientConnectionFactory factory,
            SelectorAffinity affinity,
            CompletableFuture<WebSocketCoreSession> result) {
        if (result.isDone()) {
            return;
        }
        final Map<String, Object> context = new ConcurrentHashMap<>();
        context.put(Transport.CONTEXT_KEY, Transport.TCP_IP);
        context.put(ClientConnectionFactory.CONTEXT_KEY, factory);
        context.put(
                ClientConnector.CONNECTION_PROMISE_CONTEXT_KEY, Promise.<Connection>from(connection -> {}, failure -> {
                    // The socket did not connect: the next address of the name, if it has one.
                    if (index + 1 < addresses.size()) {
                        connectTo(addresses, index + 1, factory, affinity, result);
                    } else {
                        result.completeExceptionally(failure);
                    }
                }));
        if (affinity == null) {
            connector.connect(addresses.get(index), context);
        } else {
            connectOn(affinity, addresses.get(index), context, result);
        }
    }

    /** As {@link ClientConnector#connect} does, but the socket is watched by the client socket's selector. */
    private void connectOn(
            SelectorAffinity affinity,
            InetSocketAddress address,
            Map<String, Object> context,
            CompletableFuture<WebSocketCoreSession> result) {
        SocketChannel channel = null;
        try {
            channel = SocketChannel.open();
            channel.setOption(StandardSocketOptions.TCP_NODELAY, connector.isTCPNoDelay());
            channel.configureBlocking(false);
            context.put(ClientConnector.REMOTE_SOCKET_ADDRESS_CONTEXT_KEY, address);
            final boolean connected = channel.connect(address);
            final SocketChannel pending = channel;
            // A connect still pending when the attempt times out must not wait for the selector's own timeout.
            final CompletableFuture<WebSocketCoreSession> unused = result.whenComplete((session, failure) -> {
                if (failure != null && pending.isConnectionPending()) {
                    IO.close(pending);
                }
            });
            affinity.register(channel, connected, context);
        } catch (Throwable failure) {
            // Not only IOException: an unresolved address throws UnresolvedAddressException.
            IO.close(channel);
            // Jetty's ClientConnector stores a Promise<Connection> under this key; the context map holds Objects.
            @SuppressWarnings("unchecked")
            final Promise<Connection> promise =
                    (Promise<Connection>) context.get(ClientConnector.CONNECTION_PROMISE_CONTEXT_KEY);
            promise.failed(failure);
        }
    }

    private static String describe(Throwable failure) {
        Throwable root = failure;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        final String message = root.getMessage();
        return root.getClass().getSimpleName() + (message == null ? "" : ": " + message);
    }

    /** The target with the rest of a prefix route's path and the client's query string appended. */
    static URI targetUri(URI target, String pathSuffix, String query) {
        if ((pathSuffix == null || pathSuffix.isEmpty()) && (query == null || query.isEmpty())) {
            return target;
        }
        final StringBuilder uri = new StringBuilder();
        uri.append(target.getScheme()).append("://").append(target.getRawAuthority());
        String path = target.getRawPath() == null || target.getRawPath().isEmpty() ? "/" : target.getRawPath();
        if (pathSuffix != null && !pathSuffix.isEmpty()) {
            path = path.endsWith("/") && pathSuffix.startsWith("/")
                    ? path + pathSuffix.substring(1)
                    : path.endsWith("/") || pathSuffix.startsWith("/") ? path + pathSuffix : path + "/" + pathSuffix;
        }
        uri.append(path);
        final String targetQuery = target.getRawQuery();
        if (targetQuery != null && !targetQuery.isEmpty()) {
            uri.append('?').append(targetQuery);
            if (query != null && !query.isEmpty()) {
                uri.append('&').append(query);
            }
        } else if (query != null && !query.isEmpty()) {
            uri.append('?').append(query);
        }
        return URI.create(uri.toString());
    }
}
