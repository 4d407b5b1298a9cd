package io.wsguard.auth;

import static java.util.Objects.requireNonNull;

import com.nimbusds.jose.Header;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSVerifier;
import com.nimbusds.jose.KeySourceException;
import com.nimbusds.jose.PlainHeader;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKMatcher;
import com.nimbusds.jose.jwk.JWKSelector;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.OctetSequenceKey;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.jwk.source.RateLimitReachedException;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.wsguard.check.Reason;
import io.wsguard.policy.AuthPolicy;
import java.io.Closeable;
import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import javax.net.ssl.SSLSocketFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Verifies bearer tokens against one route's {@code auth.jwt} (docs/policy.md; README, Policy file): a signed JWT whose
 * {@code alg} is pinned, whose key comes only from the configured source, whose time window,
 * {@code iss} and {@code aud} check out, and whose claims satisfy {@code require}.
 *
 * <p>Built once per policy and shared by every handshake: thread-safe. {@link #verify} never
 * throws and never blocks its caller on I/O: with {@code jwksUri} the work runs on the executor
 * given at creation (a JWKS fetch may be needed); with local keys it runs inline. Verified tokens
 * are cached by their SHA-256 until {@code exp}, so a reconnect costs no signature check.
 *
 * <p>Never trusted: {@code alg: none}, algorithms outside {@code algorithms}, keys of the wrong type
 * for the {@code alg} (HS/RS confusion), and keys or key URLs carried by the token itself
 * ({@code jku}, {@code x5u}, {@code jwk}, {@code x5c}), which are refused outright.
 */
public final class JwtVerifier implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(JwtVerifier.class);

    /** Longer tokens are refused before parsing; real ones are a few KiB at most. */
    static final int MAX_TOKEN_CHARS = 16 * 1024;

    /** A token without {@code kid} is tried against at most this many keys that fit its {@code alg}. */
    static final int MAX_KEYS_WITHOUT_KID = 4;

    /** Verified-token cache: entries, and how long a token without {@code exp} is served from it. */
    static final int CACHE_CAPACITY = 10_000;

    static final Duration CACHE_WITHOUT_EXPIRY = Duration.ofMinutes(5);

    /** Every JWS algorithm wsguard verifies (docs/policy.md). */
    private static final Set<JWSAlgorithm> SUPPORTED = Set.of(
            JWSAlgorithm.HS256,
            JWSAlgorithm.HS384,
            JWSAlgorithm.HS512,
            JWSAlgorithm.RS256,
            JWSAlgorithm.RS384,
            JWSAlgorithm.RS512,
            JWSAlgorithm.PS256,
            JWSAlgorithm.PS384,
            JWSAlgorithm.PS512,
            JWSAlgorithm.ES256,
            JWSAlgorithm.ES384,
            JWSAlgorithm.ES512,
            JWSAlgorithm.EdDSA);

    /** Header parameters that name a key or a key URL: an attacker's key is no key (RFC 8725 §3.10). */
    private static final List<String> KEY_CARRYING_HEADERS = List.of("jku", "x5u", "jwk", "x5c");

    /**
     * The latest time claim accepted, in seconds: 9999-12-31T23:59:59Z. nimbus turns a time claim's
     * seconds into milliseconds without an overflow check ({@code DateUtils.fromSecondsSinceEpoch}),
     * so {@code nbf: 1e30} would come out as 1969, in the past; wsguard refuses such values first.
     */
    static final long MAX_TIME_CLAIM = 253_402_300_799L;

    /** The time claims range-checked before nimbus reads them. */
    private static final List<String> TIME_CLAIMS = List.of("exp", "nbf", "iat");

    /** {@code typ} values accepted: none, JWT, and OAuth access tokens (RFC 9068). */
    private static final Set<String> ACCEPTED_TYPES = Set.of("jwt", "at+jwt", "application/at+jwt");

    /**
     * How the {@code jwksUri} key set is fetched and cached (nimbus {@link JWKSourceBuilder}).
     * Package-private so that tests can run rotation and outages in milliseconds.
     *
     * @param cacheTtl how long a fetched key set is used before it is fetched again
     * @param refreshTimeout how long a verification waits for a fetch another one started
     * @param refreshAhead how long before {@code cacheTtl} a scheduled refetch runs
     * @param rateLimit the least time between two fetches (each interval allows two), e.g. for unknown {@code kid}s
     * @param outageTolerance how long the last key set keeps serving while the IdP is unreachable
     * @param connectTimeout HTTP connect timeout
     * @param readTimeout HTTP timeout of each read
     * @param fetchTimeout the whole fetch (connect, TLS, headers, body): past it the fetch has failed
     * @param sizeLimit the largest key set document accepted, in bytes
     */
    record RemoteTiming(
            Duration cacheTtl,
            Duration refreshTimeout,
            Duration refreshAhead,
            Duration rateLimit,
            Duration outageTolerance,
            Duration connectTimeout,
            Duration readTimeout,
            Duration fetchTimeout,
            int sizeLimit) {

        static final RemoteTiming DEFAULT = new RemoteTiming(
                Duration.ofMinutes(5),
                Duration.ofSeconds(4),
                Duration.ofSeconds(30),
                Duration.ofSeconds(30),
                Duration.ofHours(1),
                Duration.ofSeconds(2),
                Duration.ofSeconds(2),
                Duration.ofSeconds(4),
                256 * 1024);

        /**
         * Added to {@code fetchTimeout} for how long a verification waits for keys: the fetch it waits
         * for ends by its deadline, and the failure (or the outage cache's keys) needs a moment to
         * come back through nimbus before the wait gives up on it.
         */
        static final Duration KEY_WAIT_SLACK = Duration.ofSeconds(1);

        RemoteTiming withRateLimit(Duration interval) {
            return new RemoteTiming(
                    cacheTtl,
                    refreshTimeout,
                    refreshAhead,
                    interval,
                    outageTolerance,
                    connectTimeout,
                    readTimeout,
                    fetchTimeout,
                    sizeLimit);
        }

        /** The longest a verification waits for the key set: a handshake's wait, whatever the IdP does. */
        Duration keyWait() {
            return fetchTimeout.plus(KEY_WAIT_SLACK);
        }
    }

    private final Clock clock;
    private final Executor remoteExecutor;
    private final Set<JWSAlgorithm> algorithms;
    private final String expectedAlgorithms;
    private final Optional<String> issuer;
    private final Set<String> audience;
    private final Duration clockSkew;
    private final Map<String, String> require;
    private final boolean allowNoExpiry;
    /** Local keys (publicKey, secret, jwksFile); null with jwksUri. */
    private final List<JWK> localKeys;
    /** True for publicKey and secret: one key, so the token's {@code kid} does not matter. */
    private final boolean singleKey;
    /**
     * The field naming the key source, for details: {@code publicKey}, {@code secret}, {@code jwksFile},
     * {@code jwksUri}.
     */
    private final String keySource;
    /** The jwksUri source; null with local keys. */
    private final JWKSource<SecurityContext> remoteKeys;
    /** With jwksUri: how long a verification waits for keys before it is a failed check. */
    private final Duration keyWait;

    private volatile boolean remoteKeysSeen;
    private final Map<JWK, JWSVerifier> verifiers = new ConcurrentHashMap<>();
    private final VerifiedTokenCache cache;
    private final AtomicLong signatureChecks = new AtomicLong();

    private JwtVerifier(
            AuthPolicy.JwtPolicy policy,
            Clock clock,
            Executor remoteExecutor,
            Set<JWSAlgorithm> algorithms,
            List<JWK> localKeys,
            boolean singleKey,
            String keySource,
            JWKSource<SecurityContext> remoteKeys,
            Duration keyWait,
            int cacheCapacity) {
        this.clock = clock;
        this.remoteExecutor = remoteExecutor;
        this.algorithms = algorithms;
        this.expectedAlgorithms = String.join(", ", policy.algorithms());
        this.issuer = policy.issuer();
        this.audience = Set.copyOf(policy.audience());
        this.clockSkew = policy.clockSkew();
        this.require = new LinkedHashMap<>(policy.require());
        this.allowNoExpiry = policy.allowNoExpiry();
        this.localKeys = localKeys;
        this.singleKey = singleKey;
        this.keySource = keySource;
        this.remoteKeys = remoteKeys;
        this.keyWait = keyWait;
        this.cache = new VerifiedTokenCache(cacheCapacity, CACHE_WITHOUT_EXPIRY);
    }

    /**
     * Builds the verifier for one {@code auth.jwt} section, loading and checking local keys now.
     * A {@code jwksUri} is not fetched here: the IdP may be down while wsguard starts.
     *
     * @param clock the time for {@code exp} and {@code nbf}
     * @param remoteExecutor runs verifications that may need a JWKS fetch
     * @param jwksTls trust for the {@code jwksUri} server; null for the JVM's default
     * @throws JwtConfigException when the section cannot work, naming the field at fault
     */
    public static JwtVerifier create(
            AuthPolicy.JwtPolicy policy, Clock clock, Executor remoteExecutor, SSLSocketFactory jwksTls)
            throws JwtConfigException {
        return create(policy, clock, remoteExecutor, jwksTls, RemoteTiming.DEFAULT, CACHE_CAPACITY);
    }

    static JwtVerifier create(
            AuthPolicy.JwtPolicy policy,
            Clock clock,
            Executor remoteExecutor,
            SSLSocketFactory jwksTls,
            RemoteTiming timing,
            int cacheCapacity)
            throws JwtConfigException {
        requireNonNull(policy, "policy");
        requireNonNull(clock, "clock");
        requireNonNull(remoteExecutor, "remoteExecutor");
        final Set<JWSAlgorithm> algorithms = algorithms(policy.algorithms());
        if (policy.secret().isPresent()) {
            final byte[] secret = policy.secret().get().value().getBytes(StandardCharsets.UTF_8);
            for (JWSAlgorithm alg : algorithms) {
                if (JWSAlgorithm.Family.HMAC_SHA.contains(alg) && secret.length < JwtKeys.minSecretBytes(alg)) {
                    throw new JwtConfigException(
                            "secret",
                            "is too short for " + alg.getName() + " (expected: at least "
                                    + JwtKeys.minSecretBytes(alg) + " bytes; openssl rand -base64 "
                                    + JwtKeys.minSecretBytes(alg)
                                    + " makes one)");
                }
            }
            final JWK key = new OctetSequenceKey.Builder(secret).build();
            requireServable(List.of(key), algorithms, "algorithms", "secret");
            return new JwtVerifier(
                    policy, clock, remoteExecutor, algorithms, List.of(key), true, "secret", null, null, cacheCapacity);
        }
        if (policy.publicKey().isPresent()) {
            final JWK key = JwtKeys.publicKey(policy.publicKey().get(), "publicKey");
            requireServable(
                    List.of(key),
                    algorithms,
                    "algorithms",
                    "publicKey " + JwtKeys.quote(policy.publicKey().get()));
            return new JwtVerifier(
                    policy,
                    clock,
                    remoteExecutor,
                    algorithms,
                    List.of(key),
                    true,
                    "publicKey",
                    null,
                    null,
                    cacheCapacity);
        }
        if (policy.jwksFile().isPresent()) {
            final List<JWK> keys = jwksFile(policy.jwksFile().get(), algorithms);
            return new JwtVerifier(
                    policy, clock, remoteExecutor, algorithms, keys, false, "jwksFile", null, null, cacheCapacity);
        }
        if (policy.jwksUri().isPresent()) {
            if (algorithms.stream().allMatch(JWSAlgorithm.Family.HMAC_SHA::contains)) {
                throw new JwtConfigException(
                        "algorithms",
                        "HMAC algorithms need a shared secret, and a jwksUri serves public"
                                + " keys (expected: RS256, PS256, ES256 or EdDSA with jwksUri, or a secret for HS256)");
            }
            return new JwtVerifier(
                    policy,
                    clock,
                    remoteExecutor,
                    algorithms,
                    null,
                    false,
                    "jwksUri",
                    remoteSource(policy, jwksTls, timing),
                    timing.keyWait(),
                    cacheCapacity);
        }
        throw new JwtConfigException(
                "jwt", "no key source (expected: exactly one of jwksUri, jwksFile, publicKey, secret)");
    }

    private static Set<JWSAlgorithm> algorithms(List<String> names) throws JwtConfigException {
        if (names.isEmpty()) {
            throw new JwtConfigException("algorithms", "is empty (expected: at least one, like RS256)");
        }
        final Set<JWSAlgorithm> out = new LinkedHashSet<>();
        for (String name : names) {
            final JWSAlgorithm alg = JWSAlgorithm.parse(name);
            if (!SUPPORTED.contains(alg)) {
                throw new JwtConfigException(
                        "algorithms",
                        "'" + name + "' is not a supported JWS algorithm (expected: one of "
                                + SUPPORTED.stream()
                                        .map(JWSAlgorithm::getName)
                                        .sorted()
                                        .collect(Collectors.joining(", "))
                                + ")");
            }
            out.add(alg);
        }
        return Set.copyOf(out);
    }

    /** At least one pinned algorithm must be verifiable with these keys; others are logged and never match. */
    private static void requireServable(List<JWK> keys, Set<JWSAlgorithm> algorithms, String field, String source)
            throws JwtConfigException {
        final List<String> servable = new ArrayList<>();
        for (JWSAlgorithm alg : algorithms) {
            if (keys.stream().anyMatch(k -> JwtKeys.fits(k, alg))) {
                servable.add(alg.getName());
            }
        }
        if (servable.isEmpty()) {
            final JWK key = keys.get(0);
            final List<String> would = SUPPORTED.stream()
                    .filter(a -> JwtKeys.fits(key, a))
                    .map(JWSAlgorithm::getName)
                    .sorted()
                    .toList();
            throw new JwtConfigException(
                    field,
                    source + " holds " + JwtKeys.describe(key) + ", which cannot verify " + names(algorithms)
                            + " (expected: algorithms " + would + ")");
        }
        if (servable.size() < algorithms.size()) {
            LOG.warn(
                    "auth.jwt: {} verifies only {} of algorithms {}; tokens with the others are refused",
                    source,
                    servable,
                    names(algorithms));
        }
    }

    private static List<JWK> jwksFile(Path file, Set<JWSAlgorithm> algorithms) throws JwtConfigException {
        final JWKSet set;
        try {
            set = JWKSet.load(file.toFile());
        } catch (IOException e) {
            throw new JwtConfigException(
                    "jwksFile", "cannot read " + JwtKeys.quote(file) + " (expected: a readable JWK set file)", e);
        } catch (ParseException | RuntimeException e) {
            throw new JwtConfigException(
                    "jwksFile",
                    JwtKeys.quote(file) + " is not a JWK set (expected: JSON like"
                            + " {\"keys\": [{\"kty\": \"RSA\", \"kid\": ..., \"n\": ..., \"e\": ...}]})",
                    e);
        }
        final List<JWK> keys = new ArrayList<>();
        for (JWK jwk : set.getKeys()) {
            // Keep public halves only: a private key in the file must not linger in memory.
            final JWK key = jwk instanceof OctetSequenceKey ? jwk : jwk.toPublicJWK();
            if (key != null && algorithms.stream().anyMatch(alg -> JwtKeys.fits(key, alg))) {
                keys.add(key);
            }
        }
        if (keys.isEmpty()) {
            final String found = set.getKeys().isEmpty()
                    ? "no keys"
                    : set.getKeys().stream()
                            .map(k -> JwtKeys.describe(k) + (k.getKeyID() == null ? "" : " (kid " + k.getKeyID() + ")"))
                            .collect(Collectors.joining(", "));
            throw new JwtConfigException(
                    "jwksFile",
                    JwtKeys.quote(file) + " has no key for " + names(algorithms) + " (found: " + found
                            + "; expected: a public key of the type each algorithm needs, e.g. kty RSA for RS256)");
        }
        return List.copyOf(keys);
    }

    private static JWKSource<SecurityContext> remoteSource(
            AuthPolicy.JwtPolicy policy, SSLSocketFactory tls, RemoteTiming t) throws JwtConfigException {
        final URL url;
        try {
            url = policy.jwksUri().orElseThrow().toURL();
        } catch (MalformedURLException | IllegalArgumentException e) {
            throw new JwtConfigException(
                    "jwksUri", "'" + policy.jwksUri().orElseThrow() + "' is not a URL (expected: an https:// URI)", e);
        }
        final JwksRetriever retriever =
                new JwksRetriever(t.connectTimeout(), t.readTimeout(), t.fetchTimeout(), t.sizeLimit(), tls);
        try {
            // Not retrying: a retry inside the same wait would double how long a handshake waits on a
            // failing IdP. A failed fetch is tried again by the next verification that needs keys (the
            // rate limit lets two through per interval) or by the refresh ahead of expiry.
            return JWKSourceBuilder.<SecurityContext>create(url, retriever)
                    .cache(t.cacheTtl().toMillis(), t.refreshTimeout().toMillis())
                    .refreshAheadCache(t.refreshAhead().toMillis(), true)
                    .rateLimited(t.rateLimit().toMillis())
                    .outageTolerant(t.outageTolerance().toMillis())
                    .retrying(false)
                    .build();
        } catch (IllegalStateException | IllegalArgumentException e) {
            throw new JwtConfigException("jwksUri", "cannot set up the key set cache: " + e.getMessage(), e);
        }
    }

    /**
     * Verifies one token. Never throws; completes with {@link JwtResult.Valid} or
     * {@link JwtResult.Invalid}. Completes inline for local keys and for cached tokens; with
     * {@code jwksUri} otherwise on the remote executor.
     */
    public CompletionStage<JwtResult> verify(String token) {
        try {
            if (token == null || token.isEmpty()) {
                return done(invalid("token is empty"));
            }
            if (token.length() > MAX_TOKEN_CHARS) {
                return done(invalid("token is longer than " + MAX_TOKEN_CHARS + " characters"));
            }
            final String cacheKey = VerifiedTokenCache.key(token);
            final VerifiedTokenCache.Entry hit = cache.get(cacheKey);
            if (hit != null) {
                if (clock.instant().isBefore(hit.validUntil())) {
                    return done(authorize(hit.principal()));
                }
                if (hit.principal().expiresAt().isPresent()) {
                    return done(expired());
                }
                cache.remove(cacheKey); // no exp: verify it again now and then
            }
            final Object parsed = parse(token);
            if (parsed instanceof JwtResult.Invalid refused) {
                return done(refused);
            }
            final SignedJWT jwt = (SignedJWT) parsed;
            if (remoteKeys == null) {
                return done(finish(jwt, cacheKey));
            }
            final CompletableFuture<JwtResult> result;
            try {
                result = CompletableFuture.supplyAsync(() -> finishSafely(jwt, cacheKey), remoteExecutor);
            } catch (RejectedExecutionException e) {
                return done(new JwtResult.Invalid(Reason.CHECK_FAILED, "no thread free to fetch the jwksUri key set"));
            }
            return withinKeyWait(result);
        } catch (RuntimeException e) {
            return done(unexpected(e));
        }
    }

    /**
     * Bounds how long a handshake waits for keys. A fetch ends by its own deadline, but a verification
     * may first queue behind others on the executor, wait for the fetch another one started, and then
     * start one itself: each bounded, their sum not. The work goes on in the background, and what it
     * fetches serves the next handshakes. Completed from the deadline thread rather than the JDK's
     * shared delayer, because the rest of the handshake runs on whichever thread completes it.
     */
    private CompletableFuture<JwtResult> withinKeyWait(CompletableFuture<JwtResult> result) {
        final JwtResult late =
                new JwtResult.Invalid(Reason.CHECK_FAILED, "jwksUri key set not available within " + seconds(keyWait));
        final ScheduledFuture<?> timer =
                JwksRetriever.DEADLINES.schedule(() -> result.complete(late), keyWait.toNanos(), TimeUnit.NANOSECONDS);
        // Only stops the timer; the caller gets result itself, with its outcome.
        final CompletableFuture<JwtResult> unused = result.whenComplete((done, failure) -> timer.cancel(false));
        return result;
    }

    /** Signature checks done so far (cache hits do none); for tests. */
    long signatureChecks() {
        return signatureChecks.get();
    }

    /** Stops the scheduled {@code jwksUri} refresh, if any. */
    @Override
    public void close() {
        if (remoteKeys instanceof Closeable closeable) {
            try {
                closeable.close();
            } catch (IOException e) {
                LOG.debug("closing the jwksUri key source failed", e);
            }
        }
    }

    /** The parsed token, or a {@link JwtResult.Invalid} for everything wrong before keys are needed. */
    private Object parse(String token) {
        int dots = 0;
        boolean base64Url = true;
        for (int i = 0; i < token.length(); i++) {
            final char c = token.charAt(i);
            if (c == '.') {
                dots++;
            } else if (!isBase64Url(c)) {
                base64Url = false;
            }
        }
        if (dots == 4) {
            return invalid("encrypted tokens (JWE) are not accepted (expected: a signed JWT)");
        }
        if (dots != 2) {
            return invalid("not a signed JWT (expected: 3 dot-separated parts)");
        }
        if (!base64Url) {
            // nimbus' base64url decoder skips what is not in its alphabet, so a signature with a space
            // or CR LF inside still verifies. The token verified is the token forwarded upstream
            // (headers.forward: [Authorization]), and it must be one a header can carry.
            return invalid("not a signed JWT (expected: base64url characters and two dots, no padding)");
        }
        final Header header;
        try {
            header = Header.parse(new Base64URL(token.substring(0, token.indexOf('.'))));
        } catch (ParseException e) {
            return invalid("header is not base64url-encoded JSON with an alg");
        }
        if (header instanceof PlainHeader) {
            return invalid("alg none is never accepted");
        }
        if (!(header instanceof JWSHeader jws)) {
            return invalid("encrypted tokens (JWE) are not accepted (expected: a signed JWT)");
        }
        for (String param : KEY_CARRYING_HEADERS) {
            if (jws.getIncludedParams().contains(param)) {
                return invalid("header carries " + param + ": keys named by the token are never trusted");
            }
        }
        if (jws.getCriticalParams() != null && !jws.getCriticalParams().isEmpty()) {
            return invalid("header has crit parameters (expected: none)");
        }
        final JOSEObjectType type = jws.getType();
        if (type != null && !ACCEPTED_TYPES.contains(type.getType().toLowerCase(Locale.ROOT))) {
            return invalid("typ is not JWT or at+jwt");
        }
        final JWSAlgorithm alg = jws.getAlgorithm();
        if (!algorithms.contains(alg)) {
            return invalid("alg " + printable(alg.getName()) + " not allowed (expected: " + expectedAlgorithms + ")");
        }
        if (remoteKeys != null && JWSAlgorithm.Family.HMAC_SHA.contains(alg)) {
            // Checked here so that such tokens cannot make the key set source refetch: it never holds secrets.
            return invalid("no key for alg " + alg.getName() + " (jwksUri serves public keys only)");
        }
        try {
            return SignedJWT.parse(token);
        } catch (ParseException e) {
            return invalid("not a signed JWT (expected: 3 base64url parts)");
        }
    }

    private JwtResult finishSafely(SignedJWT jwt, String cacheKey) {
        try {
            return finish(jwt, cacheKey);
        } catch (RuntimeException e) {
            return unexpected(e);
        }
    }

    /** Keys, signature, time window, iss, aud; then caches the principal and applies {@code require}. */
    private JwtResult finish(SignedJWT jwt, String cacheKey) {
        final JWSAlgorithm alg = jwt.getHeader().getAlgorithm();
        final String kid = jwt.getHeader().getKeyID();
        final List<JWK> candidates;
        if (remoteKeys == null) {
            candidates = localKeys.stream()
                    .filter(k -> JwtKeys.fits(k, alg) && (singleKey || kid == null || kid.equals(k.getKeyID())))
                    .toList();
        } else {
            final JWKMatcher matcher = JWKMatcher.forJWSHeader(
                    new JWSHeader.Builder(alg).keyID(kid).build());
            List<JWK> found;
            try {
                found = remoteKeys.get(new JWKSelector(matcher), null);
                remoteKeysSeen = true;
            } catch (RateLimitReachedException e) {
                // A refetch for an unknown kid was refused by the rate limit: with keys at hand, the kid is unknown.
                if (!remoteKeysSeen) {
                    return new JwtResult.Invalid(
                            Reason.CHECK_FAILED,
                            "jwksUri key set unavailable (fetch rate-limited, no keys cached yet)");
                }
                found = List.of();
            } catch (KeySourceException e) {
                LOG.debug("jwksUri key set unavailable", e);
                return new JwtResult.Invalid(
                        Reason.CHECK_FAILED,
                        "cannot fetch the jwksUri key set (" + e.getClass().getSimpleName() + ")");
            }
            // A public key set never legitimately serves secrets: using one would let anyone who can read it sign.
            candidates = found.stream()
                    .filter(k -> !(k instanceof OctetSequenceKey) && JwtKeys.fits(k, alg))
                    .toList();
        }
        if (candidates.isEmpty()) {
            if (kid != null && !singleKey) {
                return invalid("kid " + printable(kid) + " is not in the key set");
            }
            if (singleKey) {
                return invalid("no key for alg " + alg.getName() + " (" + keySource + " holds "
                        + JwtKeys.describe(localKeys.get(0)) + ")");
            }
            return invalid("no key for alg " + alg.getName() + " in the " + keySource + " key set");
        }
        if (kid == null && candidates.size() > MAX_KEYS_WITHOUT_KID) {
            // Without a kid every fitting key is tried: bound the signature checks one token can cost.
            return invalid("no kid, and the key set has " + candidates.size() + " keys for alg " + alg.getName()
                    + " (expected: a kid when there are more than " + MAX_KEYS_WITHOUT_KID + ")");
        }
        if (!signatureVerifies(jwt, candidates)) {
            return invalid("signature does not verify");
        }
        // Parsed once, by nimbus: the raw numbers are range-checked, then read as claims.
        final Map<String, Object> json = jwt.getPayload().toJSONObject();
        if (json == null) {
            return invalid("payload is not a JSON claims set with valid registered claims");
        }
        for (String name : TIME_CLAIMS) {
            if (json.get(name) instanceof Number number && !inTimeRange(number)) {
                return invalid(name + " is outside the representable range (expected: seconds since 1970," + " at most "
                        + MAX_TIME_CLAIM + ", the end of year 9999)");
            }
        }
        final JWTClaimsSet claims;
        try {
            claims = JWTClaimsSet.parse(json);
        } catch (ParseException e) {
            return invalid("payload is not a JSON claims set with valid registered claims");
        }
        final Instant now = clock.instant();
        final Date exp = claims.getExpirationTime();
        if (exp == null && !allowNoExpiry) {
            // Without exp a token is good forever, and its connection lives until maxLifetime.
            return invalid(
                    "exp is missing (expected: an expiry; auth.jwt.allowNoExpiry: true accepts tokens without one)");
        }
        if (exp != null && !now.isBefore(exp.toInstant().plus(clockSkew))) {
            return expired();
        }
        final Date nbf = claims.getNotBeforeTime();
        if (nbf != null && nbf.toInstant().minus(clockSkew).isAfter(now)) {
            return invalid("token not valid yet (nbf is in the future beyond clockSkew " + seconds(clockSkew) + ")");
        }
        if (issuer.isPresent()) {
            if (claims.getIssuer() == null) {
                return invalid("iss is missing (expected: " + issuer.get() + ")");
            }
            if (!issuer.get().equals(claims.getIssuer())) {
                return invalid("iss does not match (expected: " + issuer.get() + ")");
            }
        }
        if (!audience.isEmpty()) {
            final List<String> aud = claims.getAudience();
            if (aud == null || aud.isEmpty()) {
                return invalid("aud is missing (expected: one of "
                        + audience.stream().sorted().toList() + ")");
            }
            if (aud.stream().noneMatch(audience::contains)) {
                return invalid("aud does not match (expected: one of "
                        + audience.stream().sorted().toList() + ")");
            }
        }
        final Principal principal = principal(claims);
        cache.put(cacheKey, principal, exp == null ? null : exp.toInstant().plus(clockSkew), now);
        return authorize(principal);
    }

    private boolean signatureVerifies(SignedJWT jwt, List<JWK> candidates) {
        for (JWK key : candidates) {
            try {
                final JWSVerifier verifier = verifierFor(key);
                signatureChecks.incrementAndGet();
                if (jwt.verify(verifier)) {
                    return true;
                }
            } catch (JOSEException e) {
                LOG.debug("key {} cannot verify this token", key.getKeyID(), e);
            }
        }
        return false;
    }

    private JWSVerifier verifierFor(JWK key) throws JOSEException {
        final JWSVerifier known = verifiers.get(key);
        if (known != null) {
            return known;
        }
        if (verifiers.size() > 256) {
            verifiers.clear(); // rotated-out keys of a long-running jwksUri
        }
        final JWSVerifier made = JwtKeys.verifier(key);
        verifiers.put(key, made);
        return made;
    }

    private static Principal principal(JWTClaimsSet claims) {
        final Map<String, Object> all = new LinkedHashMap<>();
        claims.getClaims().forEach((name, value) -> {
            if (value != null) {
                all.put(name, value);
            }
        });
        final Date exp = claims.getExpirationTime();
        return new Principal(claims.getSubject(), all, Optional.ofNullable(exp).map(Date::toInstant));
    }

    /** {@code require} (docs/policy.md): the claim is or contains the value (an array, or space-separated words). */
    private JwtResult authorize(Principal principal) {
        for (Map.Entry<String, String> rule : require.entrySet()) {
            final Object value = principal.claims().get(rule.getKey());
            if (value == null) {
                return new JwtResult.Invalid(
                        Reason.CLAIM_DENIED,
                        "claim " + rule.getKey() + " is missing (required: " + rule.getValue() + ")");
            }
            if (!satisfies(value, rule.getValue())) {
                final boolean container = value instanceof String || value instanceof Collection;
                return new JwtResult.Invalid(
                        Reason.CLAIM_DENIED,
                        "claim " + rule.getKey() + (container ? " lacks " : " does not equal ") + rule.getValue());
            }
        }
        return new JwtResult.Valid(principal);
    }

    static boolean satisfies(Object value, String required) {
        if (value instanceof String text) {
            if (text.equals(required)) {
                return true;
            }
            // Empty words (from leading or trailing whitespace) are no words: require: {scope: ""} must not
            // pass on " admin".
            for (String word : text.split("\\s+", -1)) {
                if (!word.isEmpty() && word.equals(required)) {
                    return true;
                }
            }
            return false;
        }
        if (value instanceof Collection<?> items) {
            for (Object item : items) {
                if ((item instanceof String || item instanceof Number || item instanceof Boolean)
                        && item.toString().equals(required)) {
                    return true;
                }
            }
            return false;
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString().equals(required);
        }
        return false;
    }

    private JwtResult expired() {
        return new JwtResult.Invalid(
                Reason.TOKEN_EXPIRED, "token expired (exp is past, beyond clockSkew " + seconds(clockSkew) + ")");
    }

    /** JSON numbers come from nimbus' parser as Long or Double; NaN never passes. */
    private static boolean inTimeRange(Number seconds) {
        if (seconds instanceof Long || seconds instanceof Integer) {
            final long value = seconds.longValue();
            return value >= 0 && value <= MAX_TIME_CLAIM;
        }
        final double value = seconds.doubleValue();
        return value >= 0 && value <= MAX_TIME_CLAIM;
    }

    private static boolean isBase64Url(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    }

    private static JwtResult.Invalid invalid(String detail) {
        return new JwtResult.Invalid(Reason.TOKEN_INVALID, detail);
    }

    private static JwtResult unexpected(RuntimeException e) {
        // The exception's message may quote the token (parsers do): log the type only, at debug.
        LOG.debug("token could not be processed: {}", e.getClass().getName());
        return invalid("token could not be processed (" + e.getClass().getSimpleName() + ")");
    }

    private static CompletionStage<JwtResult> done(JwtResult result) {
        return CompletableFuture.completedStage(result);
    }

    private static String names(Set<JWSAlgorithm> algorithms) {
        return algorithms.stream().map(JWSAlgorithm::getName).sorted().collect(Collectors.joining(", "));
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
    }

    /** A header value (alg, kid) fit for the audit log: short printable ASCII, or a placeholder. */
    static String printable(String value) {
        if (value == null || value.isEmpty() || value.length() > 64) {
            return "(unprintable)";
        }
        for (int i = 0; i < value.length(); i++) {
            final char c = value.charAt(i);
            if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
                return "(unprintable)";
            }
        }
        return value;
    }
}
