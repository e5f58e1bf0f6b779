#!/usr/bin/env bash
# Instructions the relay executes per request, counted by valgrind's
# callgrind over the timed phase of a `retalk-bench send` run, in total and
# by area (signature and hash code, SQLite, HTTP and the async runtime, JSON,
# the allocator, libc, the relay's own code). On a noisy machine this is
# the repeatable measure: the same binary and load give the same count
# within about 1%, whatever else the host is doing, where sends/s and CPU
# time swing by a third from one minute to the next.
#
#   cargo build --release -p retalk-bench
#   retalk-bench/instructions.sh RELAY_BIN [REQUESTS] [CONNECTIONS]
#   retalk-bench/instructions.sh target/release/retalk-server 5000 64
#
# What it does not show: time in the kernel (system calls, wake-ups) and
# the cost of an instruction (a cache miss, a lock). Under valgrind the
# CPU reports neither AVX-512 nor the SHA extensions, so the signature and
# hash rows count the portable/AVX2 code paths, not the ones a real run
# takes: compare those rows between builds only. Needs valgrind
# (callgrind_annotate) and curl. Loopback only; the relay and its
# database are temporary (KEEP=1 keeps them, and callgrind's output
# `cg.out` for `callgrind_annotate`, and prints where).
set -euo pipefail
if [ $# -lt 1 ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
bin=$1 req=${2:-5000} conns=${3:-64}
bench="$(cd "$(dirname "$0")/.." && pwd)/target/release/retalk-bench"
d=$(mktemp -d)
port=$((20000 + RANDOM % 20000)); mport=$((port + 1))
valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$bin" --host 127.0.0.1 \
  --port $port --db "$d/db.sqlite" --metrics-addr 127.0.0.1:$mport > "$d/relay.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$d"' EXIT
count() { curl -s http://127.0.0.1:$mport/metrics | awk '/^retalk_requests_total/ {s+=$2} END {print s+0}'; }
for _ in $(seq 120); do
  curl -s -o /dev/null http://127.0.0.1:$mport/metrics && break
  sleep 0.5
done
"$bench" send --relay http://127.0.0.1:$port --requests "$req" --warmup 500 \
  --concurrency "$conns" --max-seconds 120 > "$d/bench.log" 2>&1 &
bpid=$!
wait $bpid || { tail -5 "$d/bench.log"; exit 1; }
# Every request the relay answered (the users' key publishing and the
# warm-up's sends too: the relay's start-up is then a few percent of the
# total). Counts are written when the relay exits: zeroing or dumping them
# mid-run charges whole call chains to the frames on the stack.
n=$(count)
kill -TERM $pid
wait $pid || true
out="$d/cg.out"
[ -n "${KEEP:-}" ] && echo "kept: $d"
echo "requests counted: $n (load $(cut -d' ' -f1-3 /proc/loadavg)); instructions per request:"
callgrind_annotate --auto=no --threshold=100 "$out" 2>/dev/null | awk -v n=$n '
  /PROGRAM TOTALS/ { total = $1; gsub(",", "", total); next }
  /^ *[0-9,]+ \(/ {
    v = $1; gsub(",", "", v); f = $0; a = "other"
    if (f ~ /curve25519|ed25519|zebra|sha2::|keccak|merlin/) a = "signature, hashes"
    else if (f ~ /sqlite|pcache|wal[A-Z]|[bB]tree|vdbe|pager|unix[A-Z]|page_cache|wal_buffer/) a = "sqlite"
    else if (f ~ /hyper|tokio|mio::|http::|httparse|futures|tower/) a = "http, runtime"
    else if (f ~ /serde|json/) a = "json"
    else if (f ~ /mimalloc|[^a-z]_?mi_/) a = "allocator"
    else if (f ~ /libc[.]so|ld-linux/) a = "libc"
    else if (f ~ /retalk/) a = "relay code"
    s[a] += v
  }
  END {
    for (k in s) printf "%-20s %9.0f\n", k, s[k] / n
    printf "%-20s %9.0f\n", "(all)", total / n
  }' | sort
