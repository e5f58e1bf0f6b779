#!/usr/bin/env bash
# Relay CPU per request by thread (verifiers, writer, HTTP workers,
# syncer), read from /proc/PID/task/*/schedstat (nanoseconds on a CPU)
# over 4 s in the middle of a `retalk-bench send` run; the requests in the
# window come from the relay's own metrics. Less noisy than the process's
# total: a change to one thread shows in that thread's row.
#
#   cargo build --release -p retalk-bench
#   retalk-bench/threads.sh RELAY_BIN CONNECTIONS [REQUESTS]
#   retalk-bench/threads.sh target/release/retalk-server 64
#
# Needs `curl`. Loopback only; the relay and its database are temporary.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
bin=$1 conns=$2 req=${3:-100000}
bench="$(cd "$(dirname "$0")/.." && pwd)/target/release/retalk-bench"
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
count() { curl -s http://127.0.0.1:$mport/metrics | awk '/^retalk_requests_total/ {s+=$2} END {print s+0}'; }
# Nanoseconds on a CPU so far, one line per thread: "name ns".
snap() {
  for t in /proc/$pid/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' < "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")"
  done 2>/dev/null
}
# Wait (at most 30 s) until the timed phase runs: requests flowing fast.
for _ in $(seq 60); do
  a=$(count); sleep 0.5; b=$(count)
  [ $((b - a)) -gt 1000 ] && break
done
sleep 1
n0=$(count); snap > "$d/before"
sleep 4
n1=$(count); snap > "$d/after"
wait $bpid || true
grep '^| http' "$d/bench.log" | awk -F'|' '{print "sends/s:" $7 "relay CPU per send:" $11}' || tail -5 "$d/bench.log"
n=$((n1 - n0))
echo "requests in the window: $n (load $(cut -d' ' -f1-3 /proc/loadavg)); µs of CPU per request, by thread:"
awk -v n=$n '
  function group(name) { sub(/-[0-9]+$/, "", name); return name }
  FNR == NR { before[$1] += 0; b[group($1)] += $2; next }
  { a[group($1)] += $2 }
  END { for (k in a) { total += a[k] - b[k]; printf "%-20s %7.1f\n", k, (a[k] - b[k]) / 1000 / n }
        printf "%-20s %7.1f\n", "(all)", total / 1000 / n }' "$d/before" "$d/after" | sort
