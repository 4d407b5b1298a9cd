package io.wsguard.relay;

import io.wsguard.policy.UpstreamPolicy;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.http.HttpCookieStore;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.io.ClientConnector;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.component.ContainerLifeCycle;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.Configuration;
import org.eclipse.jetty.websocket.core.CoreSession;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.client.CoreClientUpgradeRequest;
import org.eclipse.jetty.websocket.core.client.WebSocketCoreClient;
import org.eclipse.jetty.websocket.core.exception.UpgradeException;

/**
 * Opens the upstream side of a connection: tries the route's targets in the {@link Balancer}'s
 * order, each within {@code connectTimeout}, skipping a target that cannot be reached. A target
 * that answers the upgrade with an error status refused this request; that is not a reason to try
 * another one (SPEC §4: 502 {@code upstream_refused}).
 *
 * <p>One per route (and policy version); a Jetty component that owns its HTTP client. The executor
 * and scheduler are shared with the server and must be running before this starts, so that
 * stopping it (a reload retired its policy) leaves them alone.
 */
public final class UpstreamConnector extends ContainerLifeCycle {

    private static final Duration COOL_DOWN = Duration.ofSeconds(10);

    private final WebSocketCoreClient client;
    private final Balancer balancer;
    private final Duration connectTimeout;

    public UpstreamConnector(
            UpstreamPolicy policy, SslContextFactory.Client ssl, Executor executor, Scheduler scheduler) {
        final ClientConnector connector = InlineHandshaker.ENABLED ? new InlineReadsConnector() : new ClientConnector();
        connector.setSslContextFactory(ssl);
        connector.setExecutor(executor);
        connector.setScheduler(scheduler);
        connector.setConnectTimeout(policy.connectTimeout());
        final HttpClient http = new HttpClient(new org.eclipse.jetty.client.transport.HttpClientTransportOverHTTP(connector));
        http.setExecutor(executor);
        http.setScheduler(scheduler);
        http.setConnectTimeout(policy.connectTimeout().toMillis());
        // One client serves every user of the route: it must never remember a cookie or follow a redirect.
        http.setHttpCookieStore(new HttpCookieStore.Empty());
        http.setFollowRedirects(false);
        http.setUserAgentField(null);
        this.client = new WebSocketCoreClient(http, null);
        this.balancer = new Balancer(policy.targets(), policy.balance(), COOL_DOWN);
        this.connectTimeout = policy.connectTimeout();
        addBean(http, true);
        addBean(client, true);
    }

    public Balancer balancer() {
        return balancer;
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
     */
    public record Request(
            String pathSuffix,
            String query,
            HttpFields headers,
            List<String> subprotocols,
            List<String> extensions,
            Configuration.ConfigurationCustomizer configuration) {}

    /** An open upstream session and the target it runs to; release the target when it closes. */
    public record Connected(CoreSession session, Balancer.Target target) {}

    /**
     * Connects {@code handler} to the first target that takes it. The future fails with
     * {@link UpstreamRefusedException} or {@link UpstreamUnavailableException}.
     */
    public CompletableFuture<Connected> connect(Request request, FrameHandler handler) {
        final CompletableFuture<Connected> result = new CompletableFuture<>();
        attempt(balancer.attemptOrder(), 0, request, handler, result, null);
        return result;
    }

    private void attempt(
            List<Balancer.Target> order, int index, Request request, FrameHandler handler,
            CompletableFuture<Connected> result, Throwable lastFailure) {
        if (index == order.size()) {
            final String why = lastFailure == null ? "no target" : describe(lastFailure);
            result.completeExceptionally(new UpstreamUnavailableException(why));
            return;
        }
        final Balancer.Target target = order.get(index);
        final URI uri = targetUri(target.uri(), request.pathSuffix(), request.query());
        final CoreClientUpgradeRequest upgrade = new CoreClientUpgradeRequest(client, uri) {
            @Override
            public FrameHandler getFrameHandler() {
                return handler;
            }

            @Override
            protected void customize(EndPoint endPoint) {
                // Called once the upstream accepted the upgrade, before its WebSocket connection reads.
                InlineReadsConnector.readInline(endPoint, handler);
            }
        };
        upgrade.timeout(connectTimeout.toMillis(), TimeUnit.MILLISECONDS);
        upgrade.headers(fields -> fields.add(request.headers()));
        if (!request.subprotocols().isEmpty()) {
            upgrade.setSubProtocols(request.subprotocols());
        }
        if (!request.extensions().isEmpty()) {
            upgrade.addExtensions(request.extensions().toArray(String[]::new));
        }
        upgrade.setConfiguration(request.configuration());
        final CompletableFuture<CoreSession> connecting;
        try {
            connecting = client.connect(upgrade);
        } catch (Exception e) {
            target.markDown();
            attempt(order, index + 1, request, handler, result, e);
            return;
        }
        connecting.whenComplete((session, failure) -> {
            if (failure == null) {
                target.acquire();
                result.complete(new Connected(session, target));
                return;
            }
            final Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                    ? failure.getCause() : failure;
            final int status = cause instanceof UpgradeException upgradeFailure ? upgradeFailure.getResponseStatusCode() : 0;
            if (status > 0 && status != 101) {
                result.completeExceptionally(new UpstreamRefusedException(status, target.uri().toString()));
                return;
            }
            target.markDown();
            attempt(order, index + 1, request, handler, result, cause);
        });
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
            path = path.endsWith("/") && pathSuffix.startsWith("/") ? path + pathSuffix.substring(1)
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
