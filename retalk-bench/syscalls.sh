#!/usr/bin/env bash
# System calls and context switches per request, by relay thread, counted
# by `perf stat` over 4 s in the middle of a `retalk-bench send` run (the
# requests in the window come from the relay's own metrics).
#
#   cargo build --release -p retalk-bench
#   retalk-bench/syscalls.sh RELAY_BIN CONNECTIONS [REQUESTS]
#   retalk-bench/syscalls.sh target/release/retalk-server 64
#
# Needs `perf` with tracepoint access (root, or perf_event_paranoid <= 1)
# and `curl`. Loopback only; the relay and its database are temporary.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
bin=$1 conns=$2 req=${3:-60000}
. "$(dirname "$0")/under-load.sh"
start_under_load "$bin" "$conns" "$req"
n0=$(count)
events=raw_syscalls:sys_enter,context-switches
for s in pwrite64 pread64 futex fdatasync fsync fcntl recvfrom read writev write epoll_wait; do
  events="$events,syscalls:sys_enter_$s"
done
perf stat --per-thread -e "$events" -p $pid -o "$d/perf.txt" -- sleep 4
n1=$(count)
wait $bpid || true
grep '^| http' "$d/bench.log" || tail -5 "$d/bench.log"
n=$((n1 - n0))
echo "requests in the window: $n; per request, by thread (summed over threads of one name):"
awk -v n=$n '/^ *[a-z].*-[0-9]+ / {
    name=$1; sub(/-[0-9]+$/, "", name); sub(/-[0-9]+$/, "", name)
    v=$2; gsub(",", "", v); if (v ~ /^[0-9]+$/) s[name " " $3] += v
  } END { for (k in s) printf "%-45s %8.3f\n", k, s[k] / n }' "$d/perf.txt" | sort
