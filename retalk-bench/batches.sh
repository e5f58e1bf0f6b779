#!/usr/bin/env bash
# How well the relay batches under load: requests per signature batch, per
# group commit and per WAL fsync, from the relay's own histograms over 3 s
# in the middle of a `retalk-bench send` run. Per-batch costs (wake-ups,
# commits, syncs) are shared by that many requests.
#
#   cargo build --release -p retalk-bench
#   retalk-bench/batches.sh RELAY_BIN CONNECTIONS [REQUESTS]
#   retalk-bench/batches.sh target/release/retalk-server 64
#
# Needs `curl`. Loopback only; the relay and its database are temporary.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
bin=$1 conns=$2 req=${3:-100000}
. "$(dirname "$0")/under-load.sh"
start_under_load "$bin" "$conns" "$req"
scrape() { curl -s "http://127.0.0.1:$mport/metrics" | grep -E '^retalk_(verify_batch_size|group_commit_size|fsync_seconds)_count |^retalk_requests_total' || true; }
scrape > "$d/before"
sleep 3
scrape > "$d/after"
wait $bpid || true
awk '
  { v = $NF; k = $1; if (k ~ /^retalk_requests_total/) k = "requests" }
  FNR == NR { b[k] += v; next }
  { a[k] += v }
  END {
    n = a["requests"] - b["requests"]
    if (n <= 0) { print "no requests counted in the window"; exit 1 }
    printf "requests in the window: %d; requests per\n", n
    split("retalk_verify_batch_size_count retalk_group_commit_size_count retalk_fsync_seconds_count", keys, " ")
    split("signature batch,group commit,WAL fsync", names, ",")
    for (i = 1; i <= 3; i++) {
      c = a[keys[i]] - b[keys[i]]
      if (c > 0) printf "  %-16s %6.1f\n", names[i], n / c
      else printf "  %-16s %6s\n", names[i], "none"
    }
  }' "$d/before" "$d/after"
