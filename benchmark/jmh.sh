#!/usr/bin/env bash
# JMH micro-benchmarks of the handshake checks (origin allow list, token sources, JWT verification
# cached and uncached, the origin + JWT chain) and of the message content rules (ContentRulesBench:
# JSON, schema, deny rules, sanitizing, on 64 B to 1 KiB chat messages). Short defaults: about
# 8 minutes on 2 cores, half of it ContentRulesBench.
# Usage: benchmark/jmh.sh [JMH options and benchmark regexps], e.g. benchmark/jmh.sh JwtBench -p alg=RS256,
# benchmark/jmh.sh ContentRulesBench -p size=1024
# Iterations come from the classes' annotations (1 fork; 3 x 1 s warm-up, 10 for the uncached JWT
# paths; 5 x 1 s measured); -prof gc (allocation per operation) is added unless given.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JAR=$ROOT/benchmark/target/wsguard-bench.jar
if [[ ! -f $JAR ]]; then
  echo "== building $JAR" >&2
  (cd "$ROOT" && mvn -B -ntp -q -DskipTests package -pl benchmark -am) >&2
fi
# JMH refuses an option given twice: add each default only when the caller did not give it.
DEFAULTS=()
for pair in "-prof gc"; do
  opt=${pair%% *}
  given=0
  for arg in "$@"; do [[ $arg == "$opt" ]] && given=1; done
  [[ $given == 1 ]] || DEFAULTS+=($pair)
done
exec java -cp "$JAR" org.openjdk.jmh.Main "${DEFAULTS[@]}" "$@"
