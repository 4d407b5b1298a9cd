#!/usr/bin/env bash
# wsguard load benchmark: direct-to-upstream, through NGINX (when installed) and through wsguard,
# in one run, over ws and wss. Usage: benchmark/run.sh   (QUICK=1 for a ~2.5 minute smoke run)
# Knobs (env): ROUNDS (measured rounds of a, b, c, f, g, each running every leg back to back; 3, QUICK 1),
#              WARMUP, DURATION (seconds per scenario), CONNS, IDLE_CONNS, HOLD, IDLE_WARM, SETTLE, RATE_FRACTION,
#              LEG_WARMUP (s per scheme before a proxy leg), LEGS ("direct nginx wsguard"; add "tunnel" for the JVM's floor, a byte tunnel, ws only), BENCH_JAVA_OPTS, WSGUARD_JAVA_OPTS, MESSAGES, KEEP_WORK,
#              SCENARIOS ("a b c d e f g"), HS_CONCURRENCY (32), HS_WARMUP (s), HS_TOKENS (distinct tokens minted for f2),
#              CERT_KEY (rsa = RSA-2048, the default; ec = ECDSA P-256: the wss certificate of every leg),
#              WSGUARD_JAVA (the java that runs the proxy jar, e.g. /usr/lib/jvm/temurin-25-jdk-amd64/bin/java),
#              PROXY_JAR (the wsguard jar to run; default proxy/target/wsguard.jar, e.g. an older build for an A/B run),
#              SHARED (local or redis: f's /secure route gets connection caps, g's /inspect route a token and a
#              per-subject message rate, kept on the instance or in a redis-server this run starts; for the A/B of
#              what the cluster features cost: SHARED=local vs SHARED=redis, same scenarios),
#              RSS_SETTLE (s idle after each round's f before the settled RSS of each proxy leg is read; 15, QUICK 12:
#              past wsguard's 10 s periodic collection),
#              CONNLOG (on or off, the default: audit.connections, one audit line per connection at its close, written
#              to the audit file as in production; for the A/B of what the connection log costs: f's churn and the
#              100-connection relay, CONNLOG=off vs CONNLOG=on),
#              STRACE (1: after the rounds, count each proxy's syscalls with strace -c -f over exactly STRACE_ECHOES
#              echoes, ws, CONNS connections x 64 B, window 1; counts only, never CPU), STRACE_ECHOES (20000).
# See benchmark/README.md for what each figure means.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_JAR=$ROOT/benchmark/target/wsguard-bench.jar
PROXY_JAR=${PROXY_JAR:-$ROOT/proxy/target/wsguard.jar}

if [[ "${QUICK:-0}" == 1 ]]; then
  WARMUP=${WARMUP:-1}; DURATION=${DURATION:-2}; IDLE_CONNS=${IDLE_CONNS:-500}; HOLD=${HOLD:-1}; IDLE_WARM=${IDLE_WARM:-0}; SETTLE=${SETTLE:-0}; LEG_WARMUP=${LEG_WARMUP:-3}
  HS_WARMUP=${HS_WARMUP:-5}; ROUNDS=${ROUNDS:-1}
else
  WARMUP=${WARMUP:-2}; DURATION=${DURATION:-5}; IDLE_CONNS=${IDLE_CONNS:-5000}; HOLD=${HOLD:-25}; IDLE_WARM=${IDLE_WARM:-1000}; SETTLE=${SETTLE:-25}; LEG_WARMUP=${LEG_WARMUP:-15}
  HS_WARMUP=${HS_WARMUP:-30}; ROUNDS=${ROUNDS:-3}
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS: a positive number, not '$ROUNDS'" >&2; exit 2; }
SCENARIOS=${SCENARIOS:-a b c d e f g} # which scenarios to run (a-e: relay and memory, f: handshakes, g: JSON inspection)
HS_CONCURRENCY=${HS_CONCURRENCY:-32}  # scenario f: handshakes in progress at any time
if [[ "${QUICK:-0}" == 1 ]]; then RSS_SETTLE=${RSS_SETTLE:-12}; else RSS_SETTLE=${RSS_SETTLE:-15}; fi
[[ $RSS_SETTLE =~ ^[0-9]+$ ]] || { echo "RSS_SETTLE: seconds, not '$RSS_SETTLE'" >&2; exit 2; }
HS_TOKENS=${HS_TOKENS:-$((4000 * (ROUNDS + 1)))} # scenario f: distinct RS256 tokens: an equal share for each round's f2 and one for the warm-up
HS_ROUND_TOKENS=$((HS_TOKENS / (ROUNDS + 1)))
HS_ORIGIN=https://app.bench.test
CONNS=${CONNS:-100}
MESSAGES=${MESSAGES:-0}             # per connection; 0 = run for DURATION only
RATE_FRACTION=${RATE_FRACTION:-0.5} # scenario d: this fraction of the leg's saturated a-ws rate
G_JSON=(--min-size 64 --max-size 1024 --seed 42 --pool 4096) # scenario g: JSON chat messages, sizes uniform
LEGS=${LEGS:-direct nginx wsguard}
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
BENCH_JAVA_OPTS=${BENCH_JAVA_OPTS:--Xms256m -Xmx1g}
WSGUARD_JAVA_OPTS=${WSGUARD_JAVA_OPTS:-}
WSGUARD_JAVA=${WSGUARD_JAVA:-java}
CERT_KEY=${CERT_KEY:-rsa}
SHARED=${SHARED:-}
case $SHARED in
  '' | local | redis) ;;
  *) echo "SHARED: '$SHARED' is neither local nor redis" >&2; exit 2 ;;
esac
CONNLOG=${CONNLOG:-off}
case $CONNLOG in
  on | off) ;;
  *) echo "CONNLOG: '$CONNLOG' is neither on nor off" >&2; exit 2 ;;
esac
REDIS_PORT=16379
STRACE=${STRACE:-0}
STRACE_ECHOES=${STRACE_ECHOES:-20000}
case $STRACE in
  0 | 1) ;;
  *) echo "STRACE: '$STRACE' is neither 0 nor 1" >&2; exit 2 ;;
esac
[[ $STRACE_ECHOES =~ ^[1-9][0-9]*$ ]] || { echo "STRACE_ECHOES: a positive number, not '$STRACE_ECHOES'" >&2; exit 2; }
if [[ $STRACE == 1 ]] && ! command -v strace >/dev/null 2>&1; then
  echo "STRACE=1 needs strace (apt-get install strace)" >&2; exit 2
fi
case $CERT_KEY in
  rsa) CERT_NEWKEY=(-newkey rsa:2048) ;;
  ec) CERT_NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
  *) echo "CERT_KEY: unknown key type '$CERT_KEY' (expected: rsa, ec)" >&2; exit 2 ;;
esac

UPSTREAM_PORT=19000; UPSTREAM_TLS_PORT=19443
WSGUARD_WS=18080; WSGUARD_WSS=18443
NGINX_WS=28080; NGINX_WSS=28443
TUNNEL_WS=38080

WORK=$(mktemp -d /tmp/wsguard-bench.XXXXXX)
RESULTS=$WORK/results.tsv
RSS_RESULTS=$WORK/rss.tsv # scenario f's churn: leg, round, peak KiB, settled KiB
SYSCALLS=$WORK/syscalls.txt # STRACE=1: a line per proxy leg, syscalls per relayed message
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Bounded wait, then force: a stuck JVM must not keep the ports.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [[ -n "${KEEP_WORK:-}" ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

# Succeeds once 127.0.0.1:$1 accepts TCP, within $2 seconds, as long as process $3 lives.
wait_port() {
  local port=$1 seconds=$2 pid=$3 i
  for i in $(seq 1 $((seconds * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Each proxied connection takes two descriptors; the idle scenario needs thousands.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open files limit $(ulimit -n); work dir $WORK; certificate key $CERT_KEY; wsguard java: $("$WSGUARD_JAVA" -version 2>&1 | head -1)"

# ---- build what is missing ---------------------------------------------------------------------
WSGUARD_SKIP=""
if [[ ! -f $PROXY_JAR ]]; then
  log "building the project (proxy/target/wsguard.jar missing)"
  if ! (cd "$ROOT" && mvn -B -ntp -q -DskipTests package) >"$WORK/build-root.log" 2>&1; then
    log "project build failed (log: $WORK/build-root.log; first errors below)"
    grep -m3 '\[ERROR\]' "$WORK/build-root.log" >&2 || true
  fi
fi
[[ -f $PROXY_JAR ]] || WSGUARD_SKIP="proxy/target/wsguard.jar not found"
if [[ ! -f $BENCH_JAR ]]; then
  log "building benchmark/target/wsguard-bench.jar"
  # The module depends on wsguard-proxy (JMH and the token minter): build it with what it needs.
  (cd "$ROOT" && mvn -B -ntp -q -DskipTests package -pl benchmark -am) \
    >"$WORK/build-bench.log" 2>&1 || { tail -20 "$WORK/build-bench.log" >&2; exit 1; }
fi

for port in $UPSTREAM_PORT $UPSTREAM_TLS_PORT $WSGUARD_WS $WSGUARD_WSS $NGINX_WS $NGINX_WSS $TUNNEL_WS; do
  port_free "$port" || { echo "port $port on 127.0.0.1 is in use; stop what holds it" >&2; exit 1; }
done

# ---- certificate for wss (SANs for localhost and 127.0.0.1; PKCS#8 key; CERT_KEY: RSA-2048 or P-256) --
openssl req -x509 "${CERT_NEWKEY[@]}" -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/server.key" -out "$WORK/server.crt" >/dev/null 2>&1
# The echo upstream's own wss listener (the direct wss leg) reads PKCS#12: Jetty has no PEM support.
openssl pkcs12 -export -in "$WORK/server.crt" -inkey "$WORK/server.key" -passout pass:bench \
  -out "$WORK/server.p12" >/dev/null 2>&1

# ---- scenario f: an RS256 key pair and tokens (iss bench, aud bench; each its own sub and jti) ------
if has f && ! command -v python3 >/dev/null 2>&1; then
  log "scenario f skipped: python3 not on PATH (benchmark/hsload.py drives it)"
  SCENARIOS=${SCENARIOS//f/}
fi
if has f || [[ -n $SHARED ]]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt.key" >/dev/null 2>&1
  openssl rsa -in "$WORK/jwt.key" -pubout -out "$WORK/jwt.pub" >/dev/null 2>&1
  log "minting $HS_TOKENS RS256 tokens for scenario f"
  java $BENCH_JAVA_OPTS -jar "$BENCH_JAR" mint --key "$WORK/jwt.key" --count "$HS_TOKENS" --iss bench --aud bench \
    --tokens "$WORK/tokens.txt"
fi

# ---- upstream ------------------------------------------------------------------------------------
java -Xms128m -Xmx512m -cp "$BENCH_JAR" io.wsguard.bench.EchoUpstream --port $UPSTREAM_PORT \
  --tls-port $UPSTREAM_TLS_PORT --keystore "$WORK/server.p12" --keystore-password bench >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")
{ wait_port $UPSTREAM_PORT 30 "$ECHO_PID" && wait_port $UPSTREAM_TLS_PORT 5 "$ECHO_PID"; } || { cat "$WORK/echo.log" >&2; echo "echo upstream did not start" >&2; exit 1; }

# ---- NGINX ---------------------------------------------------------------------------------------
NGINX_PIDS=""; NGINX_SKIP=""
if [[ " $LEGS " == *" nginx "* ]]; then
  if command -v nginx >/dev/null 2>&1; then
    sed -e "s#@WORK@#$WORK#g" -e "s#@UPSTREAM_PORT@#$UPSTREAM_PORT#g" -e "s#@WS_PORT@#$NGINX_WS#g" \
        -e "s#@WSS_PORT@#$NGINX_WSS#g" -e "s#@CERT@#$WORK/server.crt#g" -e "s#@KEY@#$WORK/server.key#g" \
        "$ROOT/benchmark/nginx/nginx.conf.template" >"$WORK/nginx.conf"
    nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx.out" 2>&1 &
    NGINX_MASTER=$!; PIDS+=("$NGINX_MASTER")
    if wait_port $NGINX_WSS 15 "$NGINX_MASTER" && wait_port $NGINX_WS 5 "$NGINX_MASTER"; then
      sleep 0.5 # workers are forked right after the listeners open
      NGINX_PIDS=$(echo "$NGINX_MASTER" $(pgrep -P "$NGINX_MASTER") | tr ' ' ',')
    else
      NGINX_SKIP="did not start (see below)"; cat "$WORK/nginx-error.log" "$WORK/nginx.out" >&2 2>/dev/null || true
    fi
  else
    NGINX_SKIP="nginx not on PATH (apt-get install nginx)"
  fi
fi

# ---- the JVM's floor: a byte tunnel (io.wsguard.bench.TcpTunnel), only when LEGS names it ----------
TUNNEL_PID=""
if [[ " $LEGS " == *" tunnel "* ]]; then
  java -Xms64m -Xmx256m -jar "$BENCH_JAR" tunnel --port $TUNNEL_WS --upstream-port $UPSTREAM_PORT >"$WORK/tunnel.log" 2>&1 &
  TUNNEL_PID=$!; PIDS+=("$TUNNEL_PID")
  wait_port $TUNNEL_WS 15 "$TUNNEL_PID" || { cat "$WORK/tunnel.log" >&2; echo "tcp tunnel did not start" >&2; exit 1; }
fi

# ---- SHARED=redis: the store the cluster features use, as a cluster would (no persistence) ----------
if [[ $SHARED == redis ]]; then
  command -v redis-server >/dev/null 2>&1 || { echo "SHARED=redis needs redis-server (apt-get install redis-server)" >&2; exit 2; }
  port_free "$REDIS_PORT" || { echo "port $REDIS_PORT on 127.0.0.1 is in use; stop what holds it" >&2; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
  PIDS+=("$!")
  wait_port "$REDIS_PORT" 10 "$!" || { cat "$WORK/redis.log" >&2; echo "redis-server did not start" >&2; exit 1; }
fi
# What SHARED adds to a route: connection caps on /secure (f), a token and a per-subject message rate on
# /inspect (g). Generous: exercised at every handshake and message, never reached.
shared_caps() {
  [[ -n $SHARED ]] && printf '    limits: { connections: { perIp: 1000000, perSubject: 1000000 } }\n'
  return 0
}
shared_store() {
  [[ $SHARED == redis ]] && printf 'rateLimitStore: { type: redis, redis: { uri: "redis://127.0.0.1:%s" } }\n' "$REDIS_PORT"
  return 0
}
inspect_auth() {
  if [[ -n $SHARED ]]; then
    printf '    auth: { jwt: { issuer: bench, audience: [bench], algorithms: [RS256], publicKey: %s, tokenSources: ["query:access_token"] } }\n' "$WORK/jwt.pub"
  else
    printf '    auth: none\n'
  fi
}
inspect_query() { if [[ -n $SHARED ]]; then echo "?access_token=$(head -1 "$WORK/tokens.txt")"; fi; }

# ---- wsguard -------------------------------------------------------------------------------------
WSGUARD_PID=""; INSPECT_SKIP=""
# Scenario g's route /inspect: JSON schema + HTML sanitization + a deny pattern + per-connection message
# and byte limits, all generous enough never to refuse what the load client sends (valid chat messages,
# at most 1M msgs/s and 512 MiB/s per connection), so they are exercised on every message but never hit.
write_inspect_route() {
  cat <<YAML
  # Scenario g: the same echo upstream, every message inspected.
  - name: inspect
    match: { path: /inspect }
    upstream: { targets: [ws://127.0.0.1:$UPSTREAM_PORT/echo] }
$(inspect_auth)
    messages:
      maxSize: 64KiB
      json: { required: true, schema: $WORK/chat.schema.json }
      sanitize: { html: strip, fields: ["\$.text"] }
      deny:
        - { name: script-tag, pattern: "(?i)<script" }
      onViolation: close
    limits:
      messages: { perConnection: { rate: 1000000/s, burst: 1000000 }$( [[ -n $SHARED ]] && echo ", perSubject: { rate: 1000000/s, burst: 1000000 }") }
      bytes: { perConnection: { rate: 512MiB/s, burst: 1GiB } }
      onExceed: close
YAML
}
if [[ " $LEGS " == *" wsguard "* && -z $WSGUARD_SKIP ]]; then
  cat >"$WORK/policy.yaml" <<YAML
version: 1
listeners:
  - { host: 127.0.0.1, port: $WSGUARD_WS }
  - { host: 127.0.0.1, port: $WSGUARD_WSS, tls: { certificate: $WORK/server.crt, privateKey: $WORK/server.key } }
audit: { sink: file, path: $WORK/audit.jsonl$( [[ $CONNLOG == on ]] && echo ", connections: true" ) }
$(shared_store)
routes:
  - name: echo
    match: { path: /echo }
    upstream: { targets: [ws://127.0.0.1:$UPSTREAM_PORT/echo] }
    auth: none
    messages: { maxSize: 1MiB }
  # Scenario f: what a token-protected route checks at every upgrade.
  - name: secure
    match: { path: /secure }
    upstream: { targets: [ws://127.0.0.1:$UPSTREAM_PORT/echo] }
    origin: { allow: [$HS_ORIGIN] }
    auth:
      jwt: { issuer: bench, audience: [bench], algorithms: [RS256], publicKey: $WORK/jwt.pub, tokenSources: [header] }
$(shared_caps)
YAML
  if ! has f; then
    # No key pair was made: leave the secure route out.
    sed -i '/# Scenario f:/,$d' "$WORK/policy.yaml"
  fi
  if has g; then
    # The chat messages the load client sends (benchmark JsonMessages) and nothing else.
    cat >"$WORK/chat.schema.json" <<'JSON'
{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "chat message (benchmark scenario g)",
  "type": "object",
  "required": ["type", "room", "text"],
  "properties": {
    "type": { "const": "chat" },
    "room": { "type": "string", "maxLength": 64 },
    "text": { "type": "string", "maxLength": 2000 }
  },
  "additionalProperties": false
}
JSON
    cp "$WORK/policy.yaml" "$WORK/policy-plain.yaml"
    write_inspect_route >>"$WORK/policy.yaml"
    # A wsguard that does not enforce message inspection yet refuses the whole file at startup: then
    # run without /inspect, and report the wsguard-inspect leg as skipped with the first refusal.
    if ! check_out=$("$WSGUARD_JAVA" -jar "$PROXY_JAR" check -c "$WORK/policy.yaml" 2>&1); then
      # The first FILE:LINE:COL error (any first line if there is none, e.g. a JVM that did not start).
      first=$(grep -m1 "^$WORK/policy.yaml:" <<<"$check_out" || grep -m1 . <<<"$check_out" || echo "exit code only")
      INSPECT_SKIP="policy refused: ${first#"$WORK/"}"
      log "wsguard-inspect: skipped ($INSPECT_SKIP)"
      mv "$WORK/policy.yaml" "$WORK/policy-inspect-refused.yaml"
      mv "$WORK/policy-plain.yaml" "$WORK/policy.yaml"
    fi
  fi
  # shellcheck disable=SC2086 # WSGUARD_JAVA_OPTS is a list of options
  "$WSGUARD_JAVA" $WSGUARD_JAVA_OPTS -jar "$PROXY_JAR" run -c "$WORK/policy.yaml" >"$WORK/wsguard.log" 2>&1 &
  WSGUARD_PID=$!; PIDS+=("$WSGUARD_PID")
  if ! { wait_port $WSGUARD_WSS 60 "$WSGUARD_PID" && wait_port $WSGUARD_WS 5 "$WSGUARD_PID"; }; then
    WSGUARD_SKIP="did not listen on $WSGUARD_WS/$WSGUARD_WSS (log: last lines below)"
    tail -5 "$WORK/wsguard.log" >&2 || true
    WSGUARD_PID=""
  fi
fi
HS_CHECK=""
if [[ -n $WSGUARD_PID ]] && has f && command -v curl >/dev/null 2>&1; then
  # The route must really check: an upgrade with the right Origin and no token must get 401.
  no_token=$(curl -sk -o /dev/null -w '%{http_code}' --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "Origin: $HS_ORIGIN" \
    "https://127.0.0.1:$WSGUARD_WSS/secure" || true)
  with_token=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "Origin: $HS_ORIGIN" \
    -H "Authorization: Bearer $(head -1 "$WORK/tokens.txt")" "https://127.0.0.1:$WSGUARD_WSS/secure" || true)
  HS_CHECK="wsguard /secure (scenario f): no token -> HTTP $no_token (expected 401), with a token -> HTTP $with_token (expected 101)"
  log "$HS_CHECK"
fi

# ---- scenarios -----------------------------------------------------------------------------------
TCK=$(getconf CLK_TCK)
bench() {
  # shellcheck disable=SC2086 # BENCH_JAVA_OPTS is a list of options
  timeout 300 java $BENCH_JAVA_OPTS -jar "$BENCH_JAR" "$@" --out "$RESULTS" --clk-tck "$TCK" \
    --warmup "$WARMUP" --duration "$DURATION" >/dev/null || log "failed: $* (continuing)"
}

hsload() {
  timeout 300 python3 "$ROOT/benchmark/hsload.py" --concurrency "$HS_CONCURRENCY" --tokens "$WORK/tokens.txt" \
    --origin "$HS_ORIGIN" --clk-tck "$TCK" "$@" >/dev/null || log "failed: hsload $* (continuing)"
}

# The URLs and PIDs of a leg: sets LEG_WS, LEG_WSS, LEG_PIDS.
leg_endpoints() {
  case $1 in
    direct) LEG_WS="ws://127.0.0.1:$UPSTREAM_PORT"; LEG_WSS="wss://127.0.0.1:$UPSTREAM_TLS_PORT"; LEG_PIDS="" ;;
    nginx) LEG_WS="ws://127.0.0.1:$NGINX_WS"; LEG_WSS="wss://127.0.0.1:$NGINX_WSS"; LEG_PIDS="$NGINX_PIDS" ;;
    wsguard) LEG_WS="ws://127.0.0.1:$WSGUARD_WS"; LEG_WSS="wss://127.0.0.1:$WSGUARD_WSS"; LEG_PIDS="$WSGUARD_PID" ;;
    # No TLS: the tunnel's floor is for ws; its wss rows, e and f are skipped.
    tunnel) LEG_WS="ws://127.0.0.1:$TUNNEL_WS"; LEG_WSS=""; LEG_PIDS="$TUNNEL_PID" ;;
  esac
}

# What a leg does once, before the measured rounds: scenario e (idle memory, first, before the
# throughput scenarios fill caches and pools), then the unmeasured warm-ups of the relay, g and f.
prepare_leg() {
  local leg=$1 url target
  leg_endpoints "$leg"
  if [[ -n $LEG_PIDS && -n $LEG_WSS ]] && has e; then
    # A burst of IDLE_WARM handshakes (opened, closed, SETTLE s) stands for the one-time costs, then
    # IDLE_CONNS are held HOLD s.
    log "$leg: e idle $IDLE_CONNS wss connections"
    bench idle --leg "$leg" --scenario e-wss-idle --url "$LEG_WSS/echo" --pids "$LEG_PIDS" --conns "$IDLE_CONNS" --hold "$HOLD" \
      --warm-conns "$IDLE_WARM" --settle "$SETTLE"
  fi
  [[ $leg == direct || $LEG_WARMUP -le 0 ]] && return 0
  if has a || has b || has c || has d; then
    # A JVM proxy reaches its speed only once the JIT has compiled the relay path; NGINX needs no
    # warm-up, but gets the same unmeasured load so the legs stay comparable.
    log "$leg: warm-up ${LEG_WARMUP}s per scheme (not measured)"
    for url in "$LEG_WS/echo" ${LEG_WSS:+"$LEG_WSS/echo"}; do
      # shellcheck disable=SC2086 # BENCH_JAVA_OPTS is a list of options
      timeout 300 java $BENCH_JAVA_OPTS -jar "$BENCH_JAR" load --leg warmup --scenario warmup --url "$url" \
        --conns 20 --window 8 --size 512 --messages 0 --out "$WORK/warmup.tsv" --clk-tck "$TCK" \
        --warmup 0 --duration "$LEG_WARMUP" >/dev/null || log "warm-up failed (continuing)"
    done
  fi
  if has g; then
    log "$leg: g warm-up ${LEG_WARMUP}s per path (JSON, not measured)"
    for target in $(g_targets "$leg"); do
      # shellcheck disable=SC2086 # BENCH_JAVA_OPTS is a list of options
      timeout 300 java $BENCH_JAVA_OPTS -jar "$BENCH_JAR" load --leg warmup --scenario warmup --url "${target#*=}" \
        --conns 20 --window 8 --json "${G_JSON[@]}" --out "$WORK/warmup.tsv" --clk-tck "$TCK" \
        --warmup 0 --duration "$LEG_WARMUP" >/dev/null || log "g warm-up failed (continuing)"
    done
  fi
  if has f && [[ -n $LEG_WSS ]]; then
    # Tokens after the rounds' share, never measured, so that a JVM's JIT has compiled the TLS, upgrade
    # and RS256 paths before the first round.
    log "$leg: f warm-up ${HS_WARMUP}s ($HS_CONCURRENCY concurrent handshakes, not measured)"
    hsload --leg warmup --scenario warmup --url "$LEG_WSS$(f_path "$leg")" --distinct --offset "$((HS_ROUND_TOKENS * ROUNDS))" \
      --out "$WORK/warmup.tsv" --warmup 0 --duration "$HS_WARMUP"
  fi
}

# Scenario g's paths of a leg, as label=url: wsguard runs it twice, as wsguard-plain (/echo: relay
# only) and wsguard-inspect (/inspect: schema, sanitizer, deny pattern, per-connection limits).
g_targets() {
  leg_endpoints "$1"
  if [[ $1 == wsguard ]]; then
    echo "wsguard-plain=$LEG_WS/echo"
    [[ -z $INSPECT_SKIP ]] && echo "wsguard-inspect=$LEG_WS/inspect$(inspect_query)"
  else
    echo "$1=$LEG_WS/echo"
  fi
  return 0
}

# NGINX and direct check nothing at the handshake; wsguard's route /secure checks an Origin and a token.
f_path() { if [[ $1 == wsguard ]]; then echo /secure; else echo /echo; fi; }

# The resident memory of a leg's processes (comma-separated PIDs), summed, in KiB: VmRSS, read with
# the shell's own read (no process per sample).
rss_kib() {
  local pid key value rest total=0
  for pid in ${1//,/ }; do
    [[ -r /proc/$pid/status ]] || continue
    while read -r key value rest; do
      if [[ $key == VmRSS: ]]; then total=$((total + value)); break; fi
    done <"/proc/$pid/status" || true
  done
  echo "$total"
}

# Appends rss_kib of $1 to the file $2 five times a second until killed: the peak under f's churn.
rss_watch() {
  while :; do rss_kib "$1" >>"$2"; sleep 0.2; done
}

# One measured round: every scenario of a, b, c, g, f and d, each run on every leg back to back, so that
# the legs compared in a ratio are measured seconds apart rather than minutes. $1: the round (1-based);
# $2...: the legs, in the order this round runs them.
run_round() {
  local round=$1 tag="" scheme url shape scenario conns window size target leg; shift
  (( ROUNDS > 1 )) && tag="#$round"
  for scheme in ws wss; do
    has a || has b || has c || break
    log "round $round/$ROUNDS: $scheme a/b/c ($*)"
    for shape in "a-$scheme-64B $CONNS 1 64" "b-$scheme-64B-1conn 1 64 64" "c-$scheme-16KiB 10 4 16384"; do
      read -r scenario conns window size <<<"$shape"
      has "${scenario%%-*}" || continue
      for leg in "$@"; do
        leg_endpoints "$leg"
        [[ $scheme == ws || -n $LEG_WSS ]] || continue
        if [[ $scheme == ws ]]; then url="$LEG_WS/echo"; else url="$LEG_WSS/echo"; fi
        bench load --leg "$leg" --scenario "$scenario$tag" --url "$url" --pids "$LEG_PIDS" --conns "$conns" \
          --window "$window" --size "$size" --messages "$MESSAGES"
      done
    done
  done
  if has g; then
    # JSON chat messages, 64 B to 1 KiB, as text; every echo checked byte for byte. The same seed
    # everywhere: every leg sends the same messages.
    log "round $round/$ROUNDS: g JSON relay ($*)"
    for shape in "g-ws-json-64B-1KiB $CONNS 1" "g-ws-json-1conn 1 64"; do
      read -r scenario conns window <<<"$shape"
      for leg in "$@"; do
        leg_endpoints "$leg"
        for target in $(g_targets "$leg"); do
          bench load --leg "${target%%=*}" --scenario "$scenario$tag" --url "${target#*=}" --pids "$LEG_PIDS" \
            --conns "$conns" --window "$window" --json "${G_JSON[@]}" --messages "$MESSAGES"
        done
        if [[ $leg == wsguard && -n $INSPECT_SKIP ]]; then
          printf 'wsguard-inspect\t%s\tws\t0\t\t\t\t\t\t\t\t\tskipped (%s)\n' "$scenario$tag" "$INSPECT_SKIP" >>"$RESULTS"
        fi
      done
    done
  fi
  if has f; then
    # Fresh wss connections (full TLS handshake each: the client never resumes a session), each with
    # the Origin and a bearer token, closed at once (benchmark/hsload.py). f1: the same token every
    # time (wsguard's verified-token cache hits, a reconnect storm); f2: a new token every time, from
    # this round's own share of the file (every handshake verifies an RS256 signature).
    log "round $round/$ROUNDS: f handshakes, $HS_CONCURRENCY concurrent ($*)"
    local watch
    for leg in "$@"; do
      leg_endpoints "$leg"
      [[ -n $LEG_WSS ]] || continue
      [[ -n $LEG_PIDS ]] && { rss_watch "$LEG_PIDS" "$WORK/rss-$leg-$round" & watch=$!; }
      hsload --leg "$leg" --scenario "f1-wss-hs-same-token$tag" --url "$LEG_WSS$(f_path "$leg")" --pids "$LEG_PIDS" \
        --out "$RESULTS" --warmup "$WARMUP" --duration "$DURATION"
      [[ -n $LEG_PIDS ]] && { kill "$watch"; wait "$watch" 2>/dev/null || true; }
    done
    for leg in "$@"; do
      leg_endpoints "$leg"
      [[ -n $LEG_WSS ]] || continue
      [[ -n $LEG_PIDS ]] && { rss_watch "$LEG_PIDS" "$WORK/rss-$leg-$round" & watch=$!; }
      hsload --leg "$leg" --scenario "f2-wss-hs-new-tokens$tag" --url "$LEG_WSS$(f_path "$leg")" --pids "$LEG_PIDS" \
        --distinct --offset "$((HS_ROUND_TOKENS * (round - 1)))" --count "$HS_ROUND_TOKENS" --out "$RESULTS" --warmup "$WARMUP" --duration "$DURATION"
      [[ -n $LEG_PIDS ]] && { kill "$watch"; wait "$watch" 2>/dev/null || true; }
    done
    # RSS under churn: each proxy's peak while f1 and f2 ran, then what it keeps after RSS_SETTLE s idle
    # (every leg idles at once: one wait per round).
    log "round $round/$ROUNDS: f RSS, ${RSS_SETTLE}s idle"
    sleep "$RSS_SETTLE"
    for leg in "$@"; do
      leg_endpoints "$leg"
      [[ -n $LEG_PIDS && -s $WORK/rss-$leg-$round ]] || continue
      printf '%s\t%s\t%s\t%s\n' "$leg" "$round" "$(sort -n "$WORK/rss-$leg-$round" | tail -n 1)" "$(rss_kib "$LEG_PIDS")" \
        >>"$RSS_RESULTS"
    done
  fi
  if has d && has a; then
    log "round $round/$ROUNDS: d latency at half rate ($*)"
    for leg in "$@"; do [[ $leg == direct ]] || run_latency "$leg" "$tag"; done
  fi
}

# Scenario d, at the end of each round: 64-byte echoes paced at RATE_FRACTION of the leg's own saturated
# a-ws rate (the median of its rounds so far), p99 against the direct path at the same rate just
# before. One p99 over a few seconds moves by milliseconds on a shared machine; the report judges the
# median of the rounds' added p99. $2: the round's tag.
run_latency() {
  local leg=$1 tag=$2 saturated rate
  leg_endpoints "$leg"
  saturated=$(awk -F'\t' -v l="$leg" '$1 == l && ($2 == "a-ws-64B" || $2 ~ /^a-ws-64B#/) && $6 != "" { print $6 }' "$RESULTS" \
    | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
  [[ -n $saturated ]] || return 0
  rate=$(awk -v s="$saturated" -v f="$RATE_FRACTION" 'BEGIN { printf "%.0f", s * f }')
  log "$leg: d latency at $rate msgs/s (and direct at the same rate)"
  bench rate --leg "$leg" --scenario "d-ws-half-rate$tag" --url "$LEG_WS/echo" --ref-url "ws://127.0.0.1:$UPSTREAM_PORT/echo" \
    --pids "$LEG_PIDS" --conns "$CONNS" --size 64 --rate "$rate"
}

# STRACE=1, after the rounds: the syscalls a proxy leg makes per relayed message. The load client opens
# CONNS ws connections, then waits; strace attaches to every process of the leg (NGINX's master and
# workers) and all their threads (-f); only then does the client send exactly STRACE_ECHOES echoes of
# 64 B, window 1, and wait again until strace has detached before it closes. So the counts cover
# exactly those echoes: no handshake, no close. strace stops each traced process at every syscall, so
# nothing but the counts is read from this leg.
# Succeeds once every thread of the processes $1 (comma-separated) has a tracer, within 30 s.
all_traced() {
  local pid status key value rest i untraced
  for i in $(seq 1 300); do
    untraced=0
    for pid in ${1//,/ }; do
      for status in /proc/"$pid"/task/*/status; do
        [[ -r $status ]] || continue
        while read -r key value rest; do
          if [[ $key == TracerPid: ]]; then [[ $value != 0 ]] || untraced=1; break; fi
        done <"$status" || true
      done
    done
    (( untraced == 0 )) && return 0
    sleep 0.1
  done
  return 1
}

# Waits (at most $2 s) for the file $1, as long as process $3 lives.
wait_file() {
  local i
  for i in $(seq 1 $(($2 * 100))); do
    [[ -e $1 ]] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

strace_leg() {
  local leg=$1 dir=$WORK/strace-$1 load tracer pid failure="" targets=()
  leg_endpoints "$leg"
  mkdir -p "$dir"
  log "$leg: strace -c -f over $STRACE_ECHOES echoes ($CONNS ws connections x 64 B, window 1)"
  # shellcheck disable=SC2086 # BENCH_JAVA_OPTS is a list of options
  timeout 600 java $BENCH_JAVA_OPTS -jar "$BENCH_JAR" load --leg "$leg" --scenario strace-ws-64B --url "$LEG_WS/echo" \
    --conns "$CONNS" --window 1 --size 64 --echoes "$STRACE_ECHOES" --sync "$dir" --out "$WORK/strace.tsv" \
    --clk-tck "$TCK" >"$dir/load.log" 2>&1 &
  load=$!; PIDS+=("$load")
  if wait_file "$dir/opened" 120 "$load"; then
    for pid in ${LEG_PIDS//,/ }; do targets+=(-p "$pid"); done
    strace -c -f -o "$dir/strace.txt" "${targets[@]}" 2>"$dir/strace.log" &
    tracer=$!; PIDS+=("$tracer")
    if all_traced "$LEG_PIDS"; then
      touch "$dir/go"
      wait_file "$dir/done" 600 "$load" || failure="the load client stopped before its last echo"
    else
      failure="strace did not attach to every thread within 30 s"
    fi
    # strace detaches and writes its summary on SIGTERM (a background job of a script ignores SIGINT).
    kill -TERM "$tracer" 2>/dev/null || true
    wait "$tracer" 2>/dev/null || true
    touch "$dir/go" "$dir/close" # let the client finish, whatever happened
  else
    failure="the load client did not open its connections"
  fi
  wait "$load" || failure=${failure:-"the load client failed: $(tail -1 "$dir/load.log")"}
  if [[ -n $failure ]]; then
    printf '  %-10s failed: %s (logs: %s)\n' "$leg" "$failure" "$dir" >>"$SYSCALLS"
  else
    java -jar "$BENCH_JAR" syscalls --leg "$leg" --trace "$dir/strace.txt" --echoes "$STRACE_ECHOES" >>"$SYSCALLS" || true
  fi
}

# Warm the upstream's JIT once, so that the first leg measured does not pay for it.
log "warming up the echo upstream"
RESULTS_REAL=$RESULTS; RESULTS=$WORK/warmup.tsv
bench load --leg warmup --scenario warmup --url "ws://127.0.0.1:$UPSTREAM_PORT/echo" --conns 10 --window 16 --size 64
bench load --leg warmup --scenario warmup --url "wss://127.0.0.1:$UPSTREAM_TLS_PORT/echo" --conns 10 --window 4 --size 16384
RESULTS=$RESULTS_REAL

SKIPPED=(); ACTIVE=()
for leg in $LEGS; do
  case $leg in
    direct) ACTIVE+=(direct) ;;
    nginx) if [[ -n $NGINX_SKIP ]]; then SKIPPED+=("nginx: skipped ($NGINX_SKIP)"); else ACTIVE+=(nginx); fi ;;
    wsguard) if [[ -n $WSGUARD_SKIP ]]; then SKIPPED+=("wsguard: skipped ($WSGUARD_SKIP)"); else ACTIVE+=(wsguard); fi ;;
    tunnel) ACTIVE+=(tunnel) ;;
    *) echo "LEGS: unknown leg '$leg' (expected: direct, nginx, wsguard, tunnel)" >&2; exit 2 ;;
  esac
done
for leg in "${ACTIVE[@]}"; do prepare_leg "$leg"; done
if has a || has b || has c || has g || has f; then
  for round in $(seq 1 "$ROUNDS"); do
    # Every other round runs the legs in the opposite order: no leg always follows the same one.
    if (( round % 2 )); then run_round "$round" "${ACTIVE[@]}"; else run_round "$round" $(printf '%s\n' "${ACTIVE[@]}" | tac); fi
  done
fi
if [[ $STRACE == 1 ]]; then
  for leg in "${ACTIVE[@]}"; do [[ $leg == direct ]] || strace_leg "$leg"; done
fi

# ---- report --------------------------------------------------------------------------------------
echo
echo "wsguard benchmark: $(nproc) cores, warm-up ${WARMUP}s + ${DURATION}s per scenario, $(date -u +%FT%TZ)"
[[ $CONNLOG == on ]] && echo "CONNLOG=on: audit.connections, $(grep -c '"event":"connection"' "$WORK/audit.jsonl" 2>/dev/null || true) connection lines in the audit file"
for line in "${SKIPPED[@]}"; do echo "$line"; done
[[ -n $INSPECT_SKIP ]] && echo "wsguard-inspect (scenario g): skipped ($INSPECT_SKIP)"
[[ -n $HS_CHECK ]] && echo "$HS_CHECK"
echo
if [[ -s $RESULTS ]]; then
  report_rc=0
  java -jar "$BENCH_JAR" report --out "$RESULTS" || report_rc=$?
  if [[ -s $RSS_RESULTS ]]; then
    # Medians over the rounds, in MiB, each proxy next to NGINX (master and workers summed).
    echo
    echo "RSS under churn (scenario f: f1 + f2's short wss connections; peak while they ran, settled after ${RSS_SETTLE}s idle; median of rounds)"
    cut -f1 "$RSS_RESULTS" | sort -u | while read -r leg; do
      peak=$(awk -F'\t' -v l="$leg" '$1 == l { print $3 }' "$RSS_RESULTS" | sort -g \
        | awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1024 }')
      settled=$(awk -F'\t' -v l="$leg" '$1 == l { print $4 }' "$RSS_RESULTS" | sort -g \
        | awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1024 }')
      printf '%s\t%s\t%s\n' "$leg" "$peak" "$settled"
    done | awk -F'\t' '{ leg[NR] = $1; p[NR] = $2; s[NR] = $3; if ($1 == "nginx") { np = $2; ns = $3 } }
      END { for (i = 1; i <= NR; i++) {
              vs = (leg[i] != "nginx" && np > 0) ? sprintf("   (%.1fx / %.1fx NGINX)", p[i] / np, s[i] / ns) : ""
              printf "  %-10s peak %8.1f MiB   settled %8.1f MiB%s\n", leg[i], p[i], s[i], vs } }'
  fi
  if [[ -s $SYSCALLS ]]; then
    echo
    echo "syscalls per relayed message (STRACE=1: strace -c -f over $STRACE_ECHOES echoes = $((2 * STRACE_ECHOES)) messages," \
      "ws, $CONNS connections x 64 B, window 1; all processes and threads of the leg; counts only)"
    printf '  %-10s %6s  %-16s %s\n' leg total "" "top 4 by count"
    cat "$SYSCALLS"
  fi
  cp "$RESULTS" "${RESULTS_COPY:-/tmp/wsguard-bench-results.tsv}"
  echo "raw results: ${RESULTS_COPY:-/tmp/wsguard-bench-results.tsv}"
  if [[ $report_rc == 3 ]]; then
    echo "!!! scenario g: some echoes differed from what was sent, or connections were closed (see !!! above): exit 3" >&2
  fi
  exit "$report_rc"
else
  echo "no results" >&2; exit 1
fi
