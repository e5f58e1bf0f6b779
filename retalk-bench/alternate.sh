#!/usr/bin/env bash
# Compare relay builds on a noisy machine: alternate `retalk-bench send`
# runs between them, one line per run (sends/s, p50, p99, relay CPU per
# send), with the load average at the start of each.
#
#   cargo build --release -p retalk-bench
#   retalk-bench/alternate.sh ROUNDS CONNECTIONS RELAY_BIN...
#   retalk-bench/alternate.sh 5 64 /tmp/relay-base target/release/retalk-server
#
# Each run sends 40,000 requests to a fresh relay; REQUESTS=N sends N
# (a longer run: a bigger database and page cache by its end).
#
# Copy each build's target/release/retalk-server elsewhere first: the
# binaries must not change under the runs.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
rounds=$1 conns=$2 requests=${REQUESTS:-40000}
shift 2
bench="$(cd "$(dirname "$0")/.." && pwd)/target/release/retalk-bench"
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    row=$("$bench" send --spawn ours --relay-bin "$bin" --requests "$requests" --concurrency "$conns" 2>&1 | grep '^| ours' || true)
    if [ -z "$row" ]; then
      echo "$(basename "$bin") conns=$conns load=$load FAILED (run it alone to see why)"
      continue
    fi
    # columns: sends/s, p50, p99, relay CPU per send
    echo "$(basename "$bin") conns=$conns load=$load $(echo "$row" | awk -F'|' '{print $7, $8, $9, $11}')"
  done
done
