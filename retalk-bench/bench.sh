#!/usr/bin/env bash
# Runs the whole benchmark suite the way docs/benchmarks.md was made: builds
# the release binaries, makes sure the Python reference venv exists, then
# runs `retalk-bench all` against our relay and the Python reference relay
# side by side. Extra arguments go to `retalk-bench all` (e.g. --only send).
#
#   retalk-bench/bench.sh                      # everything
#   retalk-bench/bench.sh --only send,latency  # a subset
#
# Results: the tables on stdout, JSON in target/bench/results.json.
# Benchmark on a quiet machine: `uptime` before and after, and say how
# loaded it was next to any number you publish.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cargo build --release -p retalk-bench -p retalk-server -p retalk-cli
bash tests/pyref/setup.sh >&2
pyref=${RETALK_PYREF_DIR:-$root/target/pyref}/venv-${RETALK_BENCH_PYREF:-0.0.1}/bin
mkdir -p target/bench

exec target/release/retalk-bench all \
  --python-relay "$pyref/retalk-server" \
  --python-cli "$pyref/retalk" \
  --json target/bench/results.json \
  "$@"
