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
. "$(dirname "$0")/under-load.sh"
start_under_load "$bin" "$conns" "$req"
# Nanoseconds on a CPU so far, one line per thread: "name ns".
snap() {
  for t in /proc/$pid/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' < "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")"
  done 2>/dev/null
}
n0=$(count); snap > "$d/before"
sleep 4
n1=$(count); snap > "$d/after"
wait $bpid || true
grep '^| http' "$d/bench.log" | awk -F'|' '{print "sends/s:" $7 "relay CPU per send:" $11}' || tail -5 "$d/bench.log"
n=$((n1 - n0))
echo "requests in the window: $n (load $(cut -d' ' -f1-3 /proc/loadavg)); µs of CPU per request, by thread:"
awk -v n=$n '
  function group(name) { sub(/-[0-9]+$/, "", name); return name }
  FNR == NR { b[group($1)] += $2; next }
  { a[group($1)] += $2 }
  END { for (k in a) { total += a[k] - b[k]; printf "%-20s %7.1f\n", k, (a[k] - b[k]) / 1000 / n }
        printf "%-20s %7.1f\n", "(all)", total / 1000 / n }' "$d/before" "$d/after" | sort
