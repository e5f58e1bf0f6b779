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
# (a longer run: a bigger database and page cache by its end). A summary
# follows the runs: per build, the median sends/s and CPU per send, and in
# how many rounds each later build used less CPU per send than the first.
#
# Copy each build's target/release/retalk-server elsewhere first: the
# binaries must not change under the runs.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
rounds=$1 conns=$2 requests=${REQUESTS:-40000}
shift 2
bench="$(cd "$(dirname "$0")/.." && pwd)/target/release/retalk-bench"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
  for i in $(seq "$#"); do
    bin=${!i}
    load=$(cut -d' ' -f1 /proc/loadavg)
    row=$("$bench" send --spawn ours --relay-bin "$bin" --requests "$requests" --concurrency "$conns" 2>&1 | grep '^| ours' || true)
    if [ -z "$row" ]; then
      echo "$(basename "$bin") conns=$conns load=$load FAILED (run it alone to see why)"
      continue
    fi
    # columns: sends/s, p50, p99, relay CPU per send
    cols=$(echo "$row" | awk -F'|' '{print $7, $8, $9, $11}')
    echo "$(basename "$bin") conns=$conns load=$load $cols"
    # round, build index, sends/s, µs per send (for the summary)
    echo "$round $i $(echo "$cols" | awk '{print $1, $(NF-1)}')" >> "$results"
  done
done
# Per build: medians; per later build: rounds where it used less CPU per
# send than the first build in the same round.
names=$(for b in "$@"; do basename "$b"; done | tr '\n' ' ')
awk -v n=$# -v names="$names" '
  function median(list,   k, a, m) {
    m = split(list, a, " ")
    for (k = 2; k <= m; k++) { v = a[k]; j = k - 1; while (j > 0 && a[j] + 0 > v + 0) { a[j + 1] = a[j]; j-- } a[j + 1] = v }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  { sends[$2] = sends[$2] " " $3; us[$2] = us[$2] " " $4; cpu[$1, $2] = $4 }
  END {
    split(names, name, " ")
    for (i = 1; i <= n; i++) {
      if (!(i in us)) continue
      line = sprintf("%s: median %s sends/s, %s µs per send", name[i], median(sends[i]), median(us[i]))
      if (i > 1) {
        won = 0; pairs = 0
        for (key in cpu) { split(key, k, SUBSEP); if (k[2] == i && ((k[1], 1) in cpu)) { pairs++; if (cpu[key] < cpu[k[1], 1]) won++ } }
        line = line sprintf("; less CPU per send than %s in %d of %d rounds", name[1], won, pairs)
      }
      print line
    }
  }' "$results"
