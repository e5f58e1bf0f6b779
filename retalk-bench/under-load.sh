# Sourced by threads.sh, syscalls.sh and batches.sh: starts the relay BIN on a free
# loopback port with a temporary database and its metrics listener, fires
# `retalk-bench send` at it in the background, and returns once the timed
# phase runs (requests flowing fast; at most 30 s). Sets $d (the temporary
# directory, removed on exit), $pid (the relay), $bpid (the generator) and
# count() (requests the relay has answered so far, from its metrics).
#
#   start_under_load BIN CONNECTIONS REQUESTS
start_under_load() {
  local bin=$1 conns=$2 req=$3 port a b
  local bench
  bench="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/retalk-bench"
  d=$(mktemp -d)
  port=$((20000 + RANDOM % 20000)); mport=$((port + 1))
  "$bin" --host 127.0.0.1 --port $port --db "$d/db.sqlite" --max-mailbox 0 \
    --metrics-addr 127.0.0.1:$mport > "$d/relay.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; rm -rf "$d"' EXIT
  sleep 1
  "$bench" send --relay http://127.0.0.1:$port --relay-pid $pid --requests "$req" \
    --concurrency "$conns" > "$d/bench.log" 2>&1 &
  bpid=$!
  for _ in $(seq 60); do
    a=$(count); sleep 0.5; b=$(count)
    [ $((b - a)) -gt 1000 ] && break
  done
  sleep 1
}

# 0 while the relay does not answer yet (a failing curl must not end a
# script running under pipefail and errexit, silently).
count() { { curl -s http://127.0.0.1:$mport/metrics || true; } | awk '/^retalk_requests_total/ {s+=$2} END {print s+0}'; }
