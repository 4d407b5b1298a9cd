package io.wsguard.relay;

import io.github.bucket4j.Bucket;
import io.wsguard.admission.Admission;
import io.wsguard.check.CloseCodes;
import io.wsguard.check.Mode;
import io.wsguard.check.Reason;
import io.wsguard.check.SessionEnd;
import io.wsguard.check.Verdict;
import io.wsguard.limit.SubjectRate;
import io.wsguard.metrics.MessageSizes;
import io.wsguard.metrics.Traffic;
import io.wsguard.policy.Action;
import io.wsguard.policy.LimitsPolicy;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.Scheduler;
import org.eclipse.jetty.websocket.core.CloseStatus;
import org.eclipse.jetty.websocket.core.CoreSession;
import org.eclipse.jetty.websocket.core.Frame;
import org.eclipse.jetty.websocket.core.FrameHandler;
import org.eclipse.jetty.websocket.core.OpCode;
import org.eclipse.jetty.websocket.core.OutgoingEntry;
import org.eclipse.jetty.websocket.core.WebSocketConnection;
import org.eclipse.jetty.websocket.core.WebSocketCoreSession;
import org.eclipse.jetty.websocket.core.exception.BadPayloadException;
import org.eclipse.jetty.websocket.core.exception.CloseException;
import org.eclipse.jetty.websocket.core.internal.FrameFlusher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One proxied connection: the client's WebSocket session paired with the upstream's, relaying frames
 * both ways.
 *
 * <p>Flow control is Jetty's explicit demand: a side reads its next frame only after the peer has
 * written the previous one, so a slow reader slows the writer and the proxy holds at most one frame
 * per direction (README, Policy file). On a route without message rules frames pass through as they are
 * (fragmentation, pings and pongs included) and only their size is counted, after decompression. A
 * direction with rules ({@link MessageRules#inspects()}) checks each message whole before the peer
 * sees it ({@link Inspection}): then at most one message, bounded by {@code maxSize}, is held per
 * direction. Pings and pongs are relayed as they come, but where the client's messages are rated
 * each one counts against the rates like a message.
 *
 * <p>The close handshake is relayed end to end: a CLOSE from one side is forwarded to the other,
 * and the other's reply is sent back as the answer, so codes and reasons pass through unchanged.
 * When wsguard itself ends a connection (a rule, the upstream failing, idle time, lifetime, drain),
 * both sides get a CLOSE of their own.
 */
public final class ProxySession implements Traffic {

    private static final Logger LOG = LoggerFactory.getLogger(ProxySession.class);
    private static final VarHandle COUNT = MethodHandles.arrayElementVarHandle(long[].class);
    /**
     * Messages, bytes and messages per {@link MessageSizes} bucket each side relayed, at
     * {@link #CLIENT_COUNTS} and {@link #UPSTREAM_COUNTS} ({@link #SIZES} on): the two directions
     * are counted by two threads at once, so their counts are kept 64 bytes apart, never on one
     * cache line.
     */
    private static final int CLIENT_COUNTS = 0;

    private static final int SIZES = 2;
    private static final int UPSTREAM_COUNTS = SIZES + MessageSizes.BUCKETS + 8;

    /** The connection line's reasons that more than one place gives. */
    private static final String IDLE_TIMEOUT = "idle_timeout";

    private static final String DRAIN = "drain";

    /** How long a relayed CLOSE waits for the other side's reply before wsguard answers itself. */
    private static final Duration CLOSE_REPLY_TIMEOUT = Duration.ofSeconds(5);

    private final String id;
    private final String route;
    private final String clientIp;
    private final String origin;
    private final String subject;
    private final String tokenId;
    private final Instant tokenDeadline;
    private final Mode mode;
    private final Duration idleTimeout;
    private final Duration maxLifetime;
    private final Scheduler scheduler;
    private final Executor executor;
    private final SessionEvents events;
    private final Instant openedAt = Instant.now();
    /** What the connection holds (slots, policy, target): given back once both sides closed; null in tests. */
    private volatile Admission admission;
    /** The upstream target dialled, or null before (and in tests). */
    private volatile URI target;
    /** How the connection ended: set once, by the first end, under {@link #lock}; null while it runs. */
    private volatile ConnectionEnd end;

    private final long[] counts = new long[UPSTREAM_COUNTS + SIZES + MessageSizes.BUCKETS];
    /** The target the upstream side was dialled to, as the metrics' {@code upstream} label shows it. */
    private volatile String upstreamTarget;

    private final Side client;
    private final Side upstream;

    private final Object lock = new Object();
    private volatile boolean terminated;
    private boolean draining;
    private boolean openReported;
    private boolean closedReported;
    private Scheduler.Task lifetimeTask;
    private Scheduler.Task tokenTask;
    /** The {@link FramePump} relays the connection (set once, before it is reported open). */
    private volatile boolean pumped;

    /**
     * Whether plain routes relay through the {@link FramePump}: on unless the JVM runs with
     * {@code -Dwsguard.framePump=false}, which puts every connection on Jetty's sessions (README,
     * Relay paths).
     */
    private static final boolean PUMP_ENABLED = !"false".equals(System.getProperty("wsguard.framePump"));

    /**
     * @param settings what every connection of the route shares
     * @param events where the session reports itself (registry, metrics, audit)
     * @param id the connection's id in the audit log ({@code conn})
     * @param subject the verified token's subject, or null
     * @param tokenId the verified token's {@code jti}, or null: a revocation of it closes the connection
     * @param tokenDeadline when the token stops being valid and the connection is closed with 1008
     *     ({@code auth.jwt.onExpiry: close}), or null
     */
    public ProxySession(
            SessionSettings settings,
            SessionEvents events,
            Scheduler scheduler,
            Executor executor,
            String id,
            String clientIp,
            String origin,
            String subject,
            String tokenId,
            Instant tokenDeadline) {
        this.id = id;
        this.route = settings.route();
        this.clientIp = clientIp;
        this.origin = origin;
        this.subject = subject;
        this.tokenId = tokenId;
        this.tokenDeadline = tokenDeadline;
        this.mode = settings.mode();
        this.idleTimeout = settings.idleTimeout();
        this.maxLifetime = settings.maxLifetime();
        this.scheduler = scheduler;
        this.executor = executor;
        this.events = events;
        this.client = new Side("client", true, settings.inboundRules());
        this.upstream = new Side("upstream", false, settings.outboundRules());
        client.peer = upstream;
        upstream.peer = client;
    }

    /**
     * Hands the session what its handshake took: it gives {@code admission} back when both sides
     * have closed. Set once, before the client's side opens.
     */
    public void hold(Admission admission) {
        this.admission = admission;
        // Per-subject rates shared through Redis prefetch for a subject's first connection here and
        // give back what it did not spend when its last one closes.
        final Runnable closed = client.rules.opened(subject);
        if (closed != null) {
            admission.hold(closed::run);
        }
    }

    /** The upstream target the connection runs to, as the policy names it; set once its upgrade succeeded. */
    public void dialled(URI upstreamTarget) {
        this.target = upstreamTarget;
    }

    /** The upstream target dialled, or null before it answered. */
    public URI target() {
        return target;
    }

    /**
     * How the connection ended, or null while nothing has begun to close it. Final once set; by the
     * time {@link SessionEvents#closed} is called it is set.
     */
    public ConnectionEnd end() {
        return end;
    }

    /** Records how the connection ends, unless an earlier end was recorded: the first one is what began the close. */
    private void ended(ConnectionEnd.By by, String reason, int code, String phrase, String detail) {
        synchronized (lock) {
            if (end == null) {
                end = new ConnectionEnd(by, reason, code, phrase, detail);
            }
        }
    }

    /** The handler for the client's side (the server session). */
    public FrameHandler clientHandler() {
        return client;
    }

    /** The handler for the upstream's side (the client session wsguard opens). */
    public FrameHandler upstreamHandler() {
        return upstream;
    }

    public String id() {
        return id;
    }

    public String route() {
        return route;
    }

    public String clientIp() {
        return clientIp;
    }

    public String origin() {
        return origin;
    }

    /** The verified token's subject, or null. */
    public String subject() {
        return subject;
    }

    /** The verified token's {@code jti}, or null. */
    public String tokenId() {
        return tokenId;
    }

    public Instant openedAt() {
        return openedAt;
    }

    @Override
    public long messagesIn() {
        return (long) COUNT.getOpaque(counts, CLIENT_COUNTS);
    }

    @Override
    public long messagesOut() {
        return (long) COUNT.getOpaque(counts, UPSTREAM_COUNTS);
    }

    @Override
    public long bytesIn() {
        return (long) COUNT.getOpaque(counts, CLIENT_COUNTS + 1);
    }

    @Override
    public long bytesOut() {
        return (long) COUNT.getOpaque(counts, UPSTREAM_COUNTS + 1);
    }

    @Override
    public long messageSizes(boolean inbound, int bucket) {
        return (long) COUNT.getOpaque(counts, (inbound ? CLIENT_COUNTS : UPSTREAM_COUNTS) + SIZES + bucket);
    }

    /** The upstream target's label ({@link Balancer.Target#label()}), or null before it was dialled. */
    @Override
    public String upstream() {
        return upstreamTarget;
    }

    /** The upstream side runs to {@code target}; set before the client's side opens. */
    public void dialled(Balancer.Target target) {
        this.upstreamTarget = target.label();
    }

    /**
     * Closes the connection from wsguard's side: {@code clientCode} to the client and
     * {@code upstreamCode} to the upstream. Safe to call any number of times, from any thread.
     */
    public void terminate(int clientCode, String clientReason, int upstreamCode, String upstreamReason) {
        synchronized (lock) {
            if (terminated) {
                return;
            }
            terminated = true;
        }
        sendOwnClose(client, clientCode, clientReason);
        sendOwnClose(upstream, upstreamCode, upstreamReason);
        // A peer that never answers our CLOSE must not hold the connection open.
        scheduler.schedule(this::abortBoth, CLOSE_REPLY_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * Ends the connection for a drain (README, Admin port): messages already on their way to the client are
     * delivered first, then the client gets 1001. The upstream is asked to close first (with 1000,
     * an ordinary code, so that Jetty keeps reading its side until the upstream's CLOSE arrives);
     * whatever it sends until then is relayed, and its CLOSE turns into the client's 1001.
     */
    public void shutdown() {
        final Leg upstreamLeg = upstream.leg;
        synchronized (lock) {
            if (terminated || draining) {
                return;
            }
            draining = true;
            if (upstreamLeg == null || upstream.closeSent || upstream.closed || client.leg == null) {
                draining = false;
            } else {
                upstream.closeSent = true;
            }
        }
        ended(ConnectionEnd.By.PROXY, DRAIN, CloseCodes.SHUTDOWN, "wsguard shutting down", "wsguard draining");
        if (!draining) {
            terminate(CloseCodes.SHUTDOWN, "wsguard shutting down", CloseCodes.SHUTDOWN, "wsguard shutting down");
            return;
        }
        upstreamLeg.close(CloseCodes.NORMAL, "wsguard draining");
        // An upstream that never answers must not hold the drain: the client gets its 1001 anyway.
        scheduler.schedule(this::finishDrain, CLOSE_REPLY_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void finishDrain() {
        terminate(CloseCodes.SHUTDOWN, "wsguard shutting down", CloseCodes.SHUTDOWN, "wsguard shutting down");
    }

    /** Drops both connections without a close handshake: used when the client vanished mid-handshake. */
    public void abortBoth() {
        for (Side side : new Side[] {client, upstream}) {
            final Leg leg = side.leg;
            if (leg != null && !leg.isClosed()) {
                leg.abort();
            }
        }
    }

    private void sideOpened() {
        final boolean bothOpen;
        synchronized (lock) {
            bothOpen = client.leg != null && upstream.leg != null && !openReported;
            if (bothOpen) {
                openReported = true;
            }
        }
        if (!bothOpen) {
            return;
        }
        final FramePump.Link[] links = upstream.closed ? null : pumpable();
        if (links != null) {
            client.pumped(links[0]);
            upstream.pumped(links[1]);
            pumped = true;
        }
        events.opened(this);
        if (upstream.closed) {
            // The upstream went away between its upgrade and the client's.
            upstreamFailed("upstream closed during the handshake");
            return;
        }
        if (!pumped) {
            client.session.addIdleTimeoutListener(timeout -> {
                idleTimedOut();
                return false;
            });
        }
        lifetimeTask = scheduler.schedule(
                () -> expire("max_lifetime", "max lifetime " + maxLifetime.toSeconds() + "s"),
                maxLifetime.toMillis(),
                TimeUnit.MILLISECONDS);
        if (tokenDeadline != null) {
            final long delay =
                    Math.max(0, Duration.between(Instant.now(), tokenDeadline).toMillis());
            tokenTask = scheduler.schedule(this::tokenExpired, delay, TimeUnit.MILLISECONDS);
        }
        if (pumped) {
            links[0].start();
            links[1].start();
            return;
        }
        client.session.demand();
        upstream.session.demand();
    }

    /**
     * The one place that chooses how the connection's frames are relayed: by the {@link FramePump}
     * when neither direction has message rules and no extension was negotiated (a plain route), so
     * that every frame passes as bytes; else by Jetty's sessions, which hand each frame, decompressed,
     * to the rules. Returns the pump's legs, client's first, having taken both endpoints over; null
     * for Jetty's path.
     */
    private FramePump.Link[] pumpable() {
        if (!PUMP_ENABLED
                || client.rules.inspects()
                || upstream.rules.inspects()
                || client.frames == null
                || upstream.frames == null
                || client.jetty == null
                || upstream.jetty == null) {
            return null;
        }
        return FramePump.takeOver(
                client.jetty,
                client,
                upstream.jetty,
                upstream,
                new long[] {client.rules.maxSize(), upstream.rules.maxSize()},
                new long[] {client.rules.maxFragments(), upstream.rules.maxFragments()},
                client.session.getInputBufferSize());
    }

    /** Which path relays the connection's frames: {@code pump} or {@code session} (Jetty's sessions). */
    @Override
    public String relayPath() {
        return pumped ? "pump" : "session";
    }

    /** Neither side passed a byte for the idle timeout: wsguard closes the connection with 1001. */
    private void idleTimedOut() {
        expire(IDLE_TIMEOUT, "idle timeout " + idleTimeout.toSeconds() + "s");
    }

    /**
     * An operator closed the connection ({@code POST /admin/connections/close}: logout, revocation).
     * Audited like any other end wsguard puts to a session, as {@code session_expired} with 1008
     * ({@link SessionEnd#CLOSED_BY_OPERATOR}):
     * the audit trail must show who was cut off and why, not just that a socket closed. Returns
     * false when the connection was already closing.
     */
    public boolean closeByOperator(String detail) {
        synchronized (lock) {
            if (terminated) {
                return false;
            }
        }
        end(SessionEnd.CLOSED_BY_OPERATOR, Mode.ENFORCE, "closed_by_operator", detail);
        return true;
    }

    /**
     * Idle time, lifetime or an unfinished message ran out: {@link SessionEnd#EXPIRED}, 1001; {@code why}
     * is the connection line's reason.
     */
    private void expire(String why, String detail) {
        end(SessionEnd.EXPIRED, Mode.ENFORCE, why, detail);
    }

    /**
     * The token the connection was opened with has expired: a revoked or logged-out user must not
     * keep a socket open for hours. In monitor mode it is only reported.
     */
    private void tokenExpired() {
        end(SessionEnd.TOKEN_EXPIRED, mode, "token_expired", "token expired");
    }

    /**
     * Reports {@code end} (with its client code, also in monitor mode) and, when enforced, closes both sides as it
     * says; {@code why} is the connection line's reason.
     */
    private void end(SessionEnd end, Mode mode, String why, String detail) {
        events.blocked(this, end.reason(), mode, detail, end.clientCode());
        if (mode == Mode.ENFORCE) {
            ended(ConnectionEnd.By.PROXY, why, end.clientCode(), end.clientReason(), detail);
            terminate(end.clientCode(), end.clientReason(), end.upstreamCode(), end.upstreamReason());
        }
    }

    /** The upstream went away without a CLOSE (or before the client's side opened): the client gets 1014. */
    private void upstreamFailed(String detail) {
        ended(ConnectionEnd.By.UPSTREAM, "upstream_lost", CloseCodes.ABNORMAL, "", detail);
        events.blocked(
                this, Reason.UPSTREAM_UNAVAILABLE, Mode.ENFORCE, detail, Reason.UPSTREAM_UNAVAILABLE.closeCode());
        terminate(Reason.UPSTREAM_UNAVAILABLE.closeCode(), "upstream failed", CloseCodes.SHUTDOWN, "going away");
    }

    private void sendOwnClose(Side side, int code, String reason) {
        final Leg leg = side.leg;
        final Callback pending;
        synchronized (lock) {
            if (leg == null || side.closeSent || side.closed) {
                return;
            }
            side.closeSent = true;
            pending = side.pendingClose;
            side.pendingClose = null;
        }
        leg.close(code, reason);
        if (pending != null) {
            // Our CLOSE went out first, so completing the held one sends no second CLOSE.
            pending.succeeded();
        }
    }

    private void onCloseFrame(Side from, Frame frame, Callback callback) {
        final Side to = from.peer;
        CloseStatus status = CloseStatus.getCloseStatus(frame);
        if (from.controlContent != null && frame.getPayloadLength() > 2 && !terminated) {
            final Verdict.Deny refused = from.deniedControl(frame, 2, " (a close reason)");
            if (refused != null) {
                synchronized (lock) {
                    from.closeReceived = true;
                }
                if (refuse(from, refused, from.rules.onViolation(), null)) {
                    if (terminated) {
                        // Both sides got wsguard's own CLOSE; the reason went nowhere.
                        callback.succeeded();
                        return;
                    }
                    // drop: the close goes on without its reason.
                    status = new CloseStatus(status.getCode());
                }
            }
        }
        Callback replyTo = null;
        boolean forward = false;
        synchronized (lock) {
            from.closeReceived = true;
            if (from.closeSent) {
                // This is the reply to a CLOSE we relayed onto this side: pass it back as the answer.
                replyTo = to.pendingClose;
                to.pendingClose = null;
                if (replyTo != null) {
                    to.closeSent = true;
                }
            } else {
                if (end == null) {
                    // Not a reply: this side began the close (unless wsguard already had).
                    end = new ConnectionEnd(
                            from.inbound ? ConnectionEnd.By.CLIENT : ConnectionEnd.By.UPSTREAM,
                            from.inbound ? "client_closed" : "upstream_closed",
                            status.getCode(),
                            status.getReason(),
                            "");
                }
                if (to.leg != null && !to.closeSent && !to.closed) {
                    from.pendingClose = callback;
                    to.closeSent = true;
                    forward = true;
                }
            }
        }
        if (forward) {
            to.leg.sendClose(status, Callback.NOOP);
            scheduler.schedule(() -> answerCloseOurselves(from), CLOSE_REPLY_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            return;
        }
        if (replyTo != null) {
            final Callback held = replyTo;
            to.leg.sendClose(status, Callback.from(held::succeeded, x -> held.succeeded()));
        }
        // Either a reply (our output is already closed: no echo), or nobody left to ask (Jetty echoes).
        callback.succeeded();
        if (from == upstream && isDraining()) {
            // Everything the upstream sent before its CLOSE has been relayed: now the client's turn.
            finishDrain();
        }
    }

    private boolean isDraining() {
        synchronized (lock) {
            return draining;
        }
    }

    private void answerCloseOurselves(Side side) {
        final Callback pending;
        synchronized (lock) {
            pending = side.pendingClose;
            side.pendingClose = null;
        }
        if (pending != null) {
            pending.succeeded();
        }
    }

    private void sideClosed(Side side, CloseStatus status) {
        final Side other = side.peer;
        final boolean report;
        final Callback otherPending;
        final boolean cleanClose;
        synchronized (lock) {
            side.closed = true;
            cleanClose = side.closeReceived || side.closeSent;
            otherPending = !side.closeReceived ? takePending(other) : null;
            report = openReported && !closedReported && client.closed && upstream.closed;
            if (report) {
                closedReported = true;
            }
        }
        if (LOG.isDebugEnabled()) {
            LOG.debug("{} {} side closed: {}", id, side.name, status);
        }
        if (otherPending != null) {
            // The other side asked to close and this one died before answering: Jetty answers.
            otherPending.succeeded();
        }
        if (side == upstream && isDraining()) {
            finishDrain();
        } else if (!cleanClose && openReported) {
            if (side == upstream) {
                upstreamFailed("upstream connection lost");
            } else {
                ended(ConnectionEnd.By.CLIENT, "client_lost", CloseCodes.ABNORMAL, "", "");
                terminate(CloseCodes.SHUTDOWN, "client gone", CloseCodes.SHUTDOWN, "client went away");
            }
        } else if (!other.closeSent && !other.closed && other.leg != null && !side.closeReceived) {
            // We closed this side ourselves; make sure the other one follows.
            terminate(CloseCodes.SHUTDOWN, "going away", CloseCodes.SHUTDOWN, "going away");
        }
        if (report) {
            // Every way to end sets it first; a side that closed without any is the one that ended it.
            ended(
                    side.inbound ? ConnectionEnd.By.CLIENT : ConnectionEnd.By.UPSTREAM,
                    side.inbound ? "client_lost" : "upstream_lost",
                    CloseCodes.ABNORMAL,
                    "",
                    "");
            if (lifetimeTask != null) {
                lifetimeTask.cancel();
            }
            client.cancelUnfinished();
            upstream.cancelUnfinished();
            if (tokenTask != null) {
                tokenTask.cancel();
            }
            events.closed(this);
            final Admission held = admission;
            if (held != null) {
                held.release();
            }
        }
    }

    private static Callback takePending(Side side) {
        final Callback pending = side.pendingClose;
        side.pendingClose = null;
        return pending;
    }

    private void tooBig(Side side) {
        tooBig(
                side,
                (side.inbound ? "inbound" : "outbound") + " message exceeds maxSize of " + side.rules.maxSize()
                        + " bytes");
    }

    /**
     * A message came in more frames than {@code maxFragments}: refused like one over {@code maxSize}
     * (1009 {@code message_too_big}), as the limit is its size counted in frames. Empty frames cost
     * no bytes, so without it one endless message was a flood that no size or rate limit saw.
     */
    private void tooManyFragments(Side side) {
        tooBig(
                side,
                (side.inbound ? "inbound" : "outbound") + " message exceeds maxFragments of "
                        + side.rules.maxFragments() + " frames");
    }

    private void tooBig(Side side, String detail) {
        final Reason reason = Reason.MESSAGE_TOO_BIG;
        final int clientCode = reason.clientCloseCode(side.inbound);
        events.blocked(this, reason, mode, detail, mode == Mode.ENFORCE ? clientCode : 0);
        if (mode == Mode.ENFORCE) {
            ended(
                    ConnectionEnd.By.PROXY,
                    reason.code(),
                    clientCode,
                    side.inbound ? "message too big" : "upstream message too big",
                    detail);
            if (side.inbound) {
                terminate(clientCode, "message too big", reason.upstreamCloseCode(true), "going away");
            } else {
                terminate(clientCode, "upstream message too big", reason.upstreamCloseCode(false), "message too big");
            }
        }
    }

    /**
     * Jetty's parser or session refused a frame from {@code side} (a header claiming 2 GiB or more, an
     * unknown opcode, a fragmented control frame, a CONTINUATION out of sequence, a broken deflate
     * stream, ...) and is closing that side with the exception's code. Every refusal is audited,
     * these too, in any mode (Jetty's are never only reported); the other side is closed as for a
     * rule: a client's error ends the upstream with 1001, an upstream's the client with 1014.
     */
    private void refusedByJetty(Side side, CloseException refusal) {
        synchronized (lock) {
            if (!openReported) {
                // Frames are read only once both sides are open; before that sideOpened reports the failure.
                return;
            }
        }
        final int code = refusal.getStatusCode();
        final Reason reason = code == CloseCodes.MESSAGE_TOO_BIG
                ? Reason.MESSAGE_TOO_BIG
                : refusal instanceof BadPayloadException.InvalidUtf8 ? Reason.INVALID_UTF8 : Reason.PROTOCOL_ERROR;
        final String message = String.valueOf(refusal.getMessage());
        // Jetty's messages name the rule and numbers, not payload; capped all the same.
        final String detail = (side.inbound ? "inbound" : "outbound") + " frame refused: "
                + (message.length() > 160 ? message.substring(0, 160) + "…" : message);
        events.blocked(this, reason, Mode.ENFORCE, detail, side.inbound ? code : CloseCodes.BAD_GATEWAY);
        ended(
                ConnectionEnd.By.PROXY,
                reason.code(),
                side.inbound ? code : CloseCodes.BAD_GATEWAY,
                side.inbound ? reason.code() : "upstream broke the protocol",
                detail);
        if (side.inbound) {
            terminate(code, reason.code(), CloseCodes.SHUTDOWN, "going away");
        } else {
            terminate(CloseCodes.BAD_GATEWAY, "upstream broke the protocol", code, reason.code());
        }
    }

    /**
     * A rule refused a message from {@code side}: reports it and, in enforce mode, applies
     * {@code action}. Returns whether the message must not go on (false in monitor mode, where
     * it is only reported). A client's message closes the client with the reason's code; an
     * upstream's ({@code direction: both}) closes the upstream with it and the client with 1014,
     * since the client did nothing wrong.
     */
    private boolean refuse(Side side, Verdict.Deny deny, Action action, String sample) {
        final Reason reason = deny.reason();
        if (mode != Mode.ENFORCE) {
            events.blocked(this, reason, mode, deny.detail(), 0, sample);
            return false;
        }
        if (action == Action.DROP) {
            events.blocked(this, reason, mode, deny.detail(), 0, sample);
            return true;
        }
        final int clientCode = reason.clientCloseCode(side.inbound);
        events.blocked(this, reason, mode, deny.detail(), clientCode, sample);
        ended(
                ConnectionEnd.By.PROXY,
                reason.code(),
                clientCode,
                side.inbound ? reason.code() : "upstream message refused: " + reason.code(),
                deny.detail());
        if (side.inbound) {
            terminate(clientCode, reason.code(), reason.upstreamCloseCode(true), "going away");
        } else {
            terminate(
                    clientCode,
                    "upstream message refused: " + reason.code(),
                    reason.upstreamCloseCode(false),
                    reason.code());
        }
        return true;
    }

    /** Up to {@code events.sampleBytes()} of a refused payload for the audit log, or null when samples are off. */
    private String sample(byte[] buf, int off, int len) {
        final int keep = events.sampleBytes();
        if (keep <= 0 || buf == null) {
            return null;
        }
        // The log cuts the sample to whole characters within sampleBytes; a few bytes more here let it.
        return new String(buf, off, Math.min(len, keep + 4), StandardCharsets.UTF_8);
    }

    /**
     * One direction's endpoint. Jetty delivers its frames one at a time (we demand each), so the
     * message counters are only touched by one thread at a time. It is also the send callback for
     * the frame in flight, which saves an allocation per frame.
     */
    private final class Side implements FrameHandler, Callback, InputDrained, FramePump.Owner {
        private final String name;
        private final boolean inbound;
        private final MessageRules rules;
        /** Null when the route has no message rules for this direction: frames pass as they come. */
        private final Inspection inspection;
        /**
         * The inspection, when this direction has message or byte rates that pings and pongs count against; else null.
         */
        private final Inspection controlRates;
        /** The content rules that ping and pong payloads and close reasons meet (their deny rules), or null. */
        private final ContentInspector controlContent;

        private Side peer;
        /** Jetty's session of this side while Jetty's path relays it; null once the pump took over. */
        private volatile CoreSession session;
        /** This side's connection, until the path is chosen; null once the pump took over. */
        private InlineWebSocketConnection jetty;
        /** What the close handshake goes through: the session's, or the pump's; null until this side opened. */
        private volatile Leg leg;
        /**
         * Where frames relayed to this side are written, when no extension was negotiated on it:
         * straight into its connection's frame queue. A session's own send path validates the
         * frame, takes the session state's lock and passes a second queue (its fragmenting
         * flusher) and the extension stack; a relayed frame was validated when it was parsed, is
         * never larger than the frame size both sides share, and the connection's queue still
         * refuses frames after a CLOSE. That path was ~6% of the CPU relaying 64-byte messages.
         * Null when an extension (permessage-deflate) must see every frame.
         */
        private volatile WebSocketConnection frames;

        // Guarded by lock.
        private boolean closeSent;
        private boolean closeReceived;
        private volatile boolean closed;
        private Callback pendingClose;

        /** This side's connection reports when its input is drained: relayed frames may be batched. */
        private volatile boolean drainSignalled;

        // Touched only by the thread delivering this side's current frame.
        private Callback inFlight;
        /** A frame of the input read last has been relayed: the next ones of it may wait in a batch. */
        private boolean midRead;
        /** Frames wait in the peer's batch buffer until this side's input is drained. */
        private boolean batched;

        private long messageBytes;
        /** Frames of the current message on the plain path: an endless train of empty ones costs no bytes. */
        private long fragments;

        private boolean overLimit;
        /** Where this side's message and byte counts are in {@link #counts}. */
        private final int countsAt;

        Side(String name, boolean inbound, MessageRules rules) {
            this.name = name;
            this.inbound = inbound;
            this.rules = rules;
            this.inspection = rules.inspects() ? new Inspection(this) : null;
            this.controlRates = inspection != null && inspection.rated() ? inspection : null;
            this.controlContent = inspection != null ? rules.content() : null;
            this.countsAt = inbound ? CLIENT_COUNTS : UPSTREAM_COUNTS;
        }

        @Override
        public void onOpen(CoreSession coreSession, Callback callback) {
            frames = coreSession instanceof WebSocketCoreSession core
                            && core.getNegotiatedExtensions().isEmpty()
                    ? core.getConnection()
                    : null;
            jetty = coreSession instanceof WebSocketCoreSession core
                            && core.getConnection() instanceof InlineWebSocketConnection inline
                    ? inline
                    : null;
            session = coreSession;
            leg = Leg.of(coreSession);
            callback.succeeded();
            sideOpened();
        }

        @Override
        public void onFrame(Frame frame, Callback callback) {
            final byte opcode = frame.getOpCode();
            if (opcode == OpCode.CLOSE) {
                onCloseFrame(this, frame, callback);
                return;
            }
            if (terminated) {
                // Closing: read on so the peer's CLOSE arrives, but relay nothing more.
                if (frame.isDataFrame()) {
                    events.discarded(ProxySession.this, inbound);
                }
                skip(callback);
                return;
            }
            if (frame.isDataFrame()) {
                if (inspection != null) {
                    inspection.onData(frame, callback);
                    return;
                }
                if (opcode != OpCode.CONTINUATION) {
                    messageBytes = 0;
                    fragments = 0;
                    overLimit = false;
                }
                messageBytes += frame.getPayloadLength();
                fragments++;
                if (!overLimit && (messageBytes > rules.maxSize() || fragments > rules.maxFragments())) {
                    overLimit = true;
                    if (messageBytes > rules.maxSize()) {
                        tooBig(this);
                    } else {
                        tooManyFragments(this);
                    }
                    if (mode == Mode.ENFORCE) {
                        skip(callback);
                        return;
                    }
                }
                if (frame.isFin()) {
                    countMessage(messageBytes);
                }
            } else if ((controlRates != null && controlRates.refusesControl(frame))
                    || (controlContent != null && refusesControlContent(frame))) {
                skip(callback);
                return;
            }
            relay(frame, callback);
        }

        /** A ping's or pong's payload met the deny rules: whether it must not go on. */
        private boolean refusesControlContent(Frame frame) {
            final Verdict.Deny denied =
                    deniedControl(frame, 0, frame.getOpCode() == OpCode.PING ? " (a ping)" : " (a pong)");
            return denied != null && refuse(this, denied, rules.onViolation(), null);
        }

        /**
         * The deny rules' verdict on a control frame's payload from byte {@code skip} on (2 for a
         * CLOSE: its code), or null when none matches. Reads the frame in place or from the thread's
         * scratch array: as for a message, only a rule whose literals occur decodes the text.
         */
        Verdict.Deny deniedControl(Frame frame, int skip, String what) {
            final ByteBuffer payload = frame.getPayload();
            final int length = frame.getPayloadLength() - skip;
            final byte[] buf;
            final int off;
            if (payload == null || length <= 0) {
                buf = EMPTY;
                off = 0;
            } else if (payload.hasArray()) {
                buf = payload.array();
                off = payload.arrayOffset() + payload.position() + skip;
            } else {
                buf = Scratch.copy(payload);
                off = skip;
            }
            final Verdict verdict = controlContent.inspectControl(buf, off, Math.max(0, length));
            return verdict instanceof Verdict.Deny deny ? new Verdict.Deny(deny.reason(), deny.detail() + what) : null;
        }

        /**
         * Sends {@code frame} to the peer; the next frame is read once it is written. When more
         * small frames were read at once (a client with many messages in flight), all but the
         * first are batched into one write and one TLS record, written out when this side's input
         * is drained ({@link #inputDrained()}): one write per frame was most of the relay's cost
         * for bursts. The batch is bounded by the peer's output buffer, so a slow peer still stops
         * this side's reads.
         */
        void relay(Frame frame, Callback callback) {
            inFlight = callback;
            final CoreSession to = peer.session;
            final boolean batch = midRead
                    && drainSignalled
                    && frame.isDataFrame()
                    && frame.getPayloadLength() < to.getOutputBufferSize() / 4;
            midRead = true;
            if (batch) {
                batched = true;
            }
            final WebSocketConnection direct = peer.frames;
            // A message reassembled for inspection may be larger than a frame: the session's path fragments it.
            if (direct != null && frame.getPayloadLength() <= to.getMaxFrameSize()) {
                direct.enqueueFrame(
                        new OutgoingEntry.Builder(frame, this).batch(batch).build());
            } else {
                to.sendFrame(frame, this, batch);
            }
        }

        @Override
        public void drainSignalled() {
            drainSignalled = true;
        }

        @Override
        public void inputDrained() {
            midRead = false;
            if (batched) {
                batched = false;
                final WebSocketConnection direct = peer.frames;
                if (direct != null) {
                    direct.enqueueFrame(new OutgoingEntry.Builder(FrameFlusher.FLUSH_FRAME, Callback.NOOP).build());
                } else {
                    peer.session.flush(Callback.NOOP);
                }
            }
        }

        /** The pump relays this side from now on: Jetty's session and connection are let go. */
        void pumped(FramePump.Link link) {
            leg = link;
            session = null;
            frames = null;
            jetty = null;
        }

        @Override
        public boolean overLimit(boolean tooManyFragments) {
            if (tooManyFragments) {
                tooManyFragments(this);
            } else {
                tooBig(this);
            }
            return mode == Mode.ENFORCE;
        }

        @Override
        public void message(long size) {
            countMessage(size);
        }

        @Override
        public boolean closing() {
            return terminated;
        }

        @Override
        public void closeFrame(Frame close, Callback done) {
            onCloseFrame(this, close, done);
        }

        @Override
        public void refused(CloseException refusal) {
            refusedByJetty(this, refusal);
        }

        @Override
        public void discarded(int frames) {
            for (int i = 0; i < frames; i++) {
                events.discarded(ProxySession.this, inbound);
            }
        }

        @Override
        public void closed() {
            sideClosed(this, null);
        }

        @Override
        public boolean idle() {
            if (terminated) {
                // Still closing after an idle period: the peer never answered; drop it now.
                return true;
            }
            idleTimedOut();
            return false;
        }

        /** A closed connection's half-received message pins nothing: its timer goes too. */
        void cancelUnfinished() {
            if (inspection != null) {
                inspection.finished();
            }
        }

        /** Releases a frame that goes no further and reads the next one. */
        void skip(Callback callback) {
            callback.succeeded();
            session.demand();
        }

        void countMessage(long size) {
            // Only this side's delivering thread writes its counts; opaque so others read whole values.
            COUNT.setOpaque(counts, countsAt, counts[countsAt] + 1);
            COUNT.setOpaque(counts, countsAt + 1, counts[countsAt + 1] + size);
            // The size histogram's bucket: a few ns, no allocation (MessageSizeBench).
            final int bucket = countsAt + SIZES + MessageSizes.bucket(size);
            COUNT.setOpaque(counts, bucket, counts[bucket] + 1);
        }

        /**
         * Completing a send only releases a buffer and asks for the next frame, so Jetty may run
         * it on the thread that finished the write instead of handing it to another thread.
         */
        @Override
        public InvocationType getInvocationType() {
            return InvocationType.NON_BLOCKING;
        }

        /** The peer wrote the frame in flight: release it and read the next one. */
        @Override
        public void succeeded() {
            final Callback done = inFlight;
            inFlight = null;
            done.succeeded();
            session.demand();
        }

        /** The peer could not take the frame (it is closing or gone): drop it and read on. */
        @Override
        public void failed(Throwable cause) {
            if (LOG.isDebugEnabled()) {
                LOG.debug("{} relay from {} failed: {}", id, name, cause.toString());
            }
            events.discarded(ProxySession.this, inbound);
            final Callback done = inFlight;
            inFlight = null;
            done.succeeded();
            session.demand();
        }

        @Override
        public void onError(Throwable cause, Callback callback) {
            if (LOG.isDebugEnabled()) {
                LOG.debug("{} {} side error: {}", id, name, cause.toString());
            }
            // Jetty refused a frame and is closing this side with the exception's code. Other errors
            // (the socket failing, timeouts) are no refusal: sideClosed reports them as the peer gone.
            if (cause instanceof CloseException refusal && !terminated) {
                refusedByJetty(this, refusal);
            }
            callback.succeeded();
        }

        @Override
        public void onClosed(CloseStatus closeStatus, Callback callback) {
            callback.succeeded();
            sideClosed(this, closeStatus);
        }
    }

    /**
     * The message checks of one direction whose route has message rules. In enforce mode the
     * frames of a message are held (copied; never more than {@code maxSize}) until it is whole,
     * then it is checked and relayed as one frame, or not at all: the peer never sees part of a
     * refused message. A message that arrives in one frame, the usual case, is checked in place
     * and relayed as it came. In monitor mode frames go on as they come and a copy is checked once
     * the message is whole, so that what would have been blocked is reported.
     *
     * <p>Touched only by the thread delivering the side's current frame.
     */
    private final class Inspection {
        /** Holding buffers larger than this are let go after each message, so idle connections stay small. */
        private static final int RETAINED_HOLD = 8 * 1024;
        /** Larger text messages are content-checked on a pool thread, not the selector thread (a few µs below it). */
        private static final int INLINE_CONTENT_LIMIT = 8 * 1024;
        /**
         * On a rated direction, a frame in the middle of a message carrying fewer bytes than this is
         * charged like a ping: one message, and this many bytes in all. Its bytes alone would let a
         * train of empty frames cost nothing, where each costs as much to relay as a small message.
         */
        static final int FRAGMENT_FLOOR = 64;

        private static final String SMALL_FRAGMENT = " (a fragment under " + FRAGMENT_FLOOR + " bytes)";

        private final Side side;
        private final MessageRules rules;
        private final boolean enforce;
        private final Utf8Check utf8 = new Utf8Check();
        private final Bucket messageBucket;
        private final Bucket byteBucket;
        /** This direction has message or byte rates (only the client's can). */
        private final boolean rated;

        private byte opcode;
        private long size;
        /** Frames of the current message so far, against {@code maxFragments}. */
        private long fragments;
        /** Enforce: the rest of a refused message is read and dropped. */
        private boolean discarding;
        /** Monitor: the message was already reported (too big, not UTF-8); the rest just flows. */
        private boolean unchecked;

        private byte[] held;
        private int heldLength;
        /**
         * Ends the connection when a message whose frames are held stays unfinished for
         * {@code idleTimeout}. Pings and pongs keep the socket from idling, so without it a client
         * could start a message, then ping now and then, and pin up to {@code maxSize} of the
         * proxy's memory per connection until {@code maxLifetime}. Null between messages.
         */
        private volatile Scheduler.Task unfinished;

        Inspection(Side side) {
            this.side = side;
            this.rules = side.rules;
            this.enforce = mode == Mode.ENFORCE;
            this.messageBucket = side.inbound ? rules.newMessageBucket() : null;
            this.byteBucket = side.inbound ? rules.newByteBucket() : null;
            this.rated = rated();
        }

        void onData(Frame frame, Callback callback) {
            final byte op = frame.getOpCode();
            if (frame.isFin()) {
                finished();
            } else if (op != OpCode.CONTINUATION) {
                started();
            }
            if (op != OpCode.CONTINUATION) {
                startMessage(op);
                final Verdict.Deny refused = checkStart();
                if (refused != null && refuse(side, refused, actionFor(refused.reason()), null)) {
                    discard(frame, callback);
                    return;
                }
            } else if (discarding) {
                discard(frame, callback);
                return;
            } else if (rated
                    && !frame.isFin()
                    && frame.getPayloadLength() < FRAGMENT_FLOOR
                    && refusesSmallFragment(frame)) {
                // Over a rate: closing, or the message is dropped whole (the rest of it is discarded).
                release();
                discard(frame, callback);
                return;
            }
            final ByteBuffer payload = frame.getPayload();
            final int length = frame.getPayloadLength();
            size += length;
            fragments++;
            if (!unchecked) {
                if (fragments > rules.maxFragments() && size <= rules.maxSize()) {
                    tooManyFragments(side);
                    release();
                    if (enforce) {
                        side.skip(callback);
                        return;
                    }
                    unchecked = true;
                } else if (size > rules.maxSize()) {
                    tooBig(side);
                    release();
                    if (enforce) {
                        side.skip(callback);
                        return;
                    }
                    unchecked = true;
                } else if (opcode == OpCode.TEXT && length > 0 && !utf8.feed(payload)) {
                    release();
                    if (refuse(
                            side,
                            new Verdict.Deny(Reason.INVALID_UTF8, "text message is not valid UTF-8"),
                            Action.CLOSE,
                            null)) {
                        side.skip(callback);
                        return;
                    }
                    unchecked = true;
                }
            }
            if (!frame.isFin()) {
                if (!unchecked) {
                    hold(payload, length);
                }
                if (enforce) {
                    side.skip(callback);
                } else {
                    side.relay(frame, callback);
                }
                return;
            }
            if (unchecked) {
                side.countMessage(size);
                side.relay(frame, callback);
                return;
            }
            whole(frame, callback);
        }

        private void started() {
            finished();
            unfinished = scheduler.schedule(
                    () -> {
                        if (!terminated) {
                            expire(
                                    IDLE_TIMEOUT,
                                    "message unfinished for " + idleTimeout.toSeconds()
                                            + "s: its last fragment never came");
                        }
                    },
                    idleTimeout.toMillis(),
                    TimeUnit.MILLISECONDS);
        }

        /** The message ended (or the connection did): nothing is pinned any more. */
        void finished() {
            final Scheduler.Task task = unfinished;
            if (task != null) {
                unfinished = null;
                task.cancel();
            }
        }

        /**
         * Drops a frame of a message refused with {@code drop}. Its size still counts: a message
         * being dropped must not become a way to stream without end, past maxSize and the byte rate.
         */
        private void discard(Frame frame, Callback callback) {
            size += frame.getPayloadLength();
            fragments++;
            discarding = !frame.isFin();
            if (size > rules.maxSize()) {
                discarding = false;
                tooBig(side);
            } else if (fragments > rules.maxFragments()) {
                discarding = false;
                tooManyFragments(side);
            }
            side.skip(callback);
        }

        private void startMessage(byte op) {
            opcode = op;
            size = 0;
            fragments = 0;
            discarding = false;
            unchecked = false;
            heldLength = 0;
            utf8.reset();
        }

        /** Whether this direction has message or byte rates (only the client's can). */
        boolean rated() {
            return messageBucket != null
                    || byteBucket != null
                    || (side.inbound && (rules.messagesPerSubject() != null || rules.bytesPerSubject() != null));
        }

        /** The checks a message's first frame decides: its type and the message rates. */
        private Verdict.Deny checkStart() {
            if (opcode == OpCode.BINARY && !rules.binaryAllowed()) {
                return new Verdict.Deny(Reason.BINARY_DENIED, "binary messages are not allowed on this route");
            }
            return overMessageRate("");
        }

        /** Takes one message from the message rates; the refusal when one of them is exhausted, else null. */
        private Verdict.Deny overMessageRate(String what) {
            if (messageBucket != null && !messageBucket.tryConsume(1)) {
                return new Verdict.Deny(
                        Reason.MESSAGE_RATE,
                        "over messages.perConnection " + describe(rules.messagesPerConnection()) + what);
            }
            if (side.inbound && rules.messagesPerSubject() != null && subject != null) {
                final SubjectRate.Take take = rules.messagesPerSubject().tryTake(subject, 1);
                if (take != SubjectRate.Take.TAKEN) {
                    return overSubjectRate(take, Reason.MESSAGE_RATE, "messages.perSubject", what);
                }
            }
            return null;
        }

        /** Takes {@code bytes} from the subject's byte rate; the refusal when it is exhausted, else null. */
        private Verdict.Deny overSubjectBytes(long bytes, String what) {
            if (side.inbound && rules.bytesPerSubject() != null && subject != null) {
                final SubjectRate.Take take = rules.bytesPerSubject().tryTake(subject, bytes);
                if (take != SubjectRate.Take.TAKEN) {
                    return overSubjectRate(take, Reason.BYTE_RATE, "bytes.perSubject", what);
                }
            }
            return null;
        }

        private static Verdict.Deny overSubjectRate(SubjectRate.Take take, Reason reason, String key, String what) {
            if (take == SubjectRate.Take.UNAVAILABLE) {
                // Refused like a message over the rate (onExceed), but the detail says wsguard could not check.
                return new Verdict.Deny(
                        reason,
                        key + " not checked: rate-limit store unavailable (rateLimitStore.redis.onUnavailable: deny)"
                                + what);
            }
            return new Verdict.Deny(reason, "over " + key + " for this subject" + what);
        }

        /**
         * A PING or PONG counts as one message against the message rates and its payload against the
         * byte rate: each is relayed and answered like a message, so uncounted they would be a flood
         * the limits never see. Over a rate, {@code onExceed} applies as to a message: close, or drop
         * this frame (audited and counted). It may arrive between the frames of a message being held;
         * that message's state is left alone. Returns whether the frame must not go on.
         */
        boolean refusesControl(Frame frame) {
            final String what = frame.getOpCode() == OpCode.PING ? " (a ping)" : " (a pong)";
            Verdict.Deny over = overMessageRate(what);
            if (over == null && byteBucket != null && !byteBucket.tryConsume(Math.max(1, frame.getPayloadLength()))) {
                over = new Verdict.Deny(
                        Reason.BYTE_RATE, "over bytes.perConnection " + describe(rules.bytesPerConnection()) + what);
            }
            if (over == null) {
                over = overSubjectBytes(Math.max(1, frame.getPayloadLength()), what);
            }
            return over != null && refuse(side, over, rules.onExceed(), null);
        }

        /**
         * A frame in the middle of a message carrying fewer than {@link #FRAGMENT_FLOOR} bytes, on a
         * rated direction: counts as a message against the message rates and as
         * {@code FRAGMENT_FLOOR} bytes against the byte rate (its own bytes are taken with the
         * message's), so a train of empty CONTINUATION frames runs into the rates like a ping flood.
         * Larger frames pay in bytes, and {@code maxSize} bounds how many one message can have. The
         * frame that ends a message is never charged: it ends what the first frame paid for. Returns
         * whether the frame must not go on ({@code onExceed}: close, or drop the message).
         */
        private boolean refusesSmallFragment(Frame frame) {
            Verdict.Deny over = overMessageRate(SMALL_FRAGMENT);
            if (over == null
                    && byteBucket != null
                    && !byteBucket.tryConsume(FRAGMENT_FLOOR - frame.getPayloadLength())) {
                over = new Verdict.Deny(
                        Reason.BYTE_RATE,
                        "over bytes.perConnection " + describe(rules.bytesPerConnection()) + SMALL_FRAGMENT);
            }
            if (over == null) {
                over = overSubjectBytes(FRAGMENT_FLOOR - frame.getPayloadLength(), SMALL_FRAGMENT);
            }
            return over != null && refuse(side, over, rules.onExceed(), null);
        }

        /** The last frame of a message that passed every per-frame check: check it whole, then relay it or not. */
        private void whole(Frame last, Callback callback) {
            final boolean single = heldLength == 0 && last.getOpCode() != OpCode.CONTINUATION;
            if (!single) {
                hold(last.getPayload(), last.getPayloadLength());
            }
            final int len = (int) size;
            if (opcode == OpCode.TEXT && !utf8.atCharBoundary()) {
                decided(
                        last,
                        callback,
                        single,
                        new Verdict.Deny(Reason.INVALID_UTF8, "text message ends inside a character"),
                        null,
                        0,
                        len);
                return;
            }
            if (byteBucket != null && !byteBucket.tryConsume(Math.max(1, size))) {
                decided(
                        last,
                        callback,
                        single,
                        new Verdict.Deny(
                                Reason.BYTE_RATE, "over bytes.perConnection " + describe(rules.bytesPerConnection())),
                        null,
                        0,
                        len);
                return;
            }
            final Verdict.Deny overSubject = overSubjectBytes(Math.max(1, size), "");
            if (overSubject != null) {
                decided(last, callback, single, overSubject, null, 0, len);
                return;
            }
            final ContentInspector content = rules.content();
            if (content == null) {
                decided(last, callback, single, Verdict.ALLOW, null, 0, len);
                return;
            }
            if (len > INLINE_CONTENT_LIMIT) {
                // Sanitizing or matching tens of KiB takes milliseconds: not on the selector thread that
                // other connections' reads run on. Nothing else touches this direction meanwhile (its
                // next frame is not demanded yet), and the frame stays valid until its callback completes.
                if (single) {
                    hold(last.getPayload(), len);
                }
                final byte[] bytes = held;
                executor.execute(() -> decided(last, callback, single, inspect(content, bytes, 0, len), bytes, 0, len));
                return;
            }
            final byte[] buf;
            int off = 0;
            if (!single) {
                buf = held == null ? EMPTY : held;
            } else {
                final ByteBuffer payload = last.getPayload();
                if (payload == null) {
                    buf = EMPTY;
                } else if (payload.hasArray()) {
                    buf = payload.array();
                    off = payload.arrayOffset() + payload.position();
                } else {
                    buf = Scratch.copy(payload);
                }
            }
            decided(last, callback, single, inspect(content, buf, off, len), buf, off, len);
        }

        /** The content verdict on the whole message, text or binary (binary is checked as text when it is UTF-8). */
        private Verdict inspect(ContentInspector content, byte[] buf, int off, int len) {
            if (opcode == OpCode.TEXT) {
                return content.inspectText(buf, off, len);
            }
            // The text checker is idle during a binary message: reuse it rather than allocate one.
            utf8.reset();
            return content.inspectBinary(buf, off, len, utf8.feed(buf, off, len) && utf8.atCharBoundary());
        }

        /** Applies the verdict on a whole message: relays it, its rewrite, or nothing. */
        private void decided(
                Frame last, Callback callback, boolean single, Verdict verdict, byte[] buf, int off, int len) {
            if (verdict instanceof Verdict.Deny deny) {
                final String sample = buf != null ? sample(buf, off, len) : sampleOf(last, single);
                if (refuse(side, deny, actionFor(deny.reason()), sample)) {
                    release();
                    side.skip(callback);
                    return;
                }
            } else if (verdict instanceof Verdict.Rewrite rewrite) {
                if (enforce) {
                    events.modified(ProxySession.this, rewrite.reason(), rewrite.detail());
                    final byte[] text = rewrite.text().getBytes(StandardCharsets.UTF_8);
                    release();
                    side.countMessage(text.length);
                    // A rewrite keeps the message's type: binary JSON stays binary for the upstream that expects it.
                    side.relay(new Frame(opcode, true, ByteBuffer.wrap(text)), callback);
                    return;
                }
                events.blocked(ProxySession.this, rewrite.reason(), mode, rewrite.detail(), 0, null);
            }
            side.countMessage(size);
            if (single || !enforce) {
                release();
                side.relay(last, callback);
                return;
            }
            final Frame whole = new Frame(opcode, true, ByteBuffer.wrap(held == null ? EMPTY : held, 0, heldLength));
            release();
            side.relay(whole, callback);
        }

        private String sampleOf(Frame last, boolean single) {
            if (events.sampleBytes() <= 0) {
                return null;
            }
            if (!single) {
                return sample(held, 0, heldLength);
            }
            final ByteBuffer payload = last.getPayload();
            return payload == null ? null : sample(Scratch.copy(payload), 0, payload.remaining());
        }

        private void hold(ByteBuffer payload, int length) {
            if (length == 0) {
                return;
            }
            final int needed = heldLength + length; // <= maxSize: the size check ran first
            if (held == null || held.length < needed) {
                final long doubled = held == null ? 1024 : 2L * held.length;
                final int grown =
                        (int) Math.max(needed, Math.min(doubled, Math.min(rules.maxSize(), Integer.MAX_VALUE - 8)));
                held = held == null ? new byte[grown] : Arrays.copyOf(held, grown);
            }
            payload.get(payload.position(), held, heldLength, length);
            heldLength = needed;
        }

        /** Forgets the held message; a large buffer goes (a frame being sent may still hold it). */
        private void release() {
            heldLength = 0;
            if (held != null && held.length > RETAINED_HOLD) {
                held = null;
            }
        }

        private Action actionFor(Reason reason) {
            return switch (reason) {
                case MESSAGE_RATE, BYTE_RATE -> rules.onExceed();
                case INVALID_UTF8, MESSAGE_TOO_BIG -> Action.CLOSE;
                default -> rules.onViolation();
            };
        }
    }

    private static final byte[] EMPTY = new byte[0];

    private static String describe(LimitsPolicy.RateLimitPolicy limit) {
        return "(" + limit.rate() + ", burst " + limit.burst() + ")";
    }
}
