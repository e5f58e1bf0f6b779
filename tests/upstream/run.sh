#!/usr/bin/env bash
# Runs the Python reference's own upstream test suite against our relay
# (and optionally our CLI). That suite is not shipped on PyPI and is not in
# this repository (it is the reference's code): get it from the reference's
# repository (github.com/xhluca/retalk, folder tests/) and pass its folder.
#
#   tests/upstream/run.sh UPSTREAM_DIR python [MODULE ...]   reference relay and CLI (baseline)
#   tests/upstream/run.sh UPSTREAM_DIR relay  [MODULE ...]   our relay, reference CLI and library
#   tests/upstream/run.sh UPSTREAM_DIR cli    [MODULE ...]   our relay and our CLI
#
# UPSTREAM_DIR holds tests/test_*.py. MODULE names limit the run (e.g.
# test_groups). Results: one JSON object per test in
# target/upstream/results-MODE.jsonl, then a count. The reference is the
# pinned retalk 0.3.0 of tests/pyref/setup.sh. docs/compatibility.md has
# the last run's results and what each failure means.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
up="$(cd "${1:?usage: run.sh UPSTREAM_DIR python|relay|cli [MODULE ...]}" && pwd)"
mode="${2:?usage: run.sh UPSTREAM_DIR python|relay|cli [MODULE ...]}"
shift 2
[ -d "$up/tests" ] || { echo "run.sh: $up has no tests/ folder" >&2; exit 2; }
"$root/tests/pyref/setup.sh" >/dev/null
py="$root/target/pyref/venv-0.3.0/bin/python"
real="$("$py" -c 'import os, retalk; print(os.path.dirname(retalk.__file__))')"
out="$root/target/upstream"
mkdir -p "$out"
(cd "$root" && cargo build -q -p retalk-server -p retalk-cli)
export RETALK_SHIM_SERVER_BIN="$root/target/debug/retalk-server"
export RETALK_SHIM_CLI_BIN="$root/target/debug/retalk"
# A shim package `retalk` whose listed modules are ours and whose others are
# the real 0.3.0 package's. 0.3.0's init reads its packaged config.json
# through the package, so the shim carries it too.
shim() {
  local dir="$out/shim-$1/retalk"; shift
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$root/tests/upstream/shim/__init__.py" "$dir/"
  ln -s "$real/config.json" "$dir/config.json"
  for m in "$@"; do cp "$root/tests/upstream/shim/$m.py" "$dir/"; done
  dirname "$dir"
}
case "$mode" in
  python) path="" ;;
  relay) path="$(shim relay server)" ;;
  cli) path="$(shim cli server cli)" ;;
  *) echo "run.sh: mode is python, relay or cli" >&2; exit 2 ;;
esac
results="$out/results-$mode.jsonl"
cd "$up"
set +e
PYTHONPATH="$path" timeout 1800 "$py" "$root/tests/upstream/runner.py" "$results" "$@"
set -e
"$py" - "$results" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
c = collections.Counter(r["status"] for r in rows)
print(f"{len(rows)} tests: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())))
for r in rows:
    if r["status"] not in ("ok", "skip"):
        print(f"  {r['status']}: {r['id']}")
PY
# test_e2ee's start-up helper can leave a relay on port 8766 when it fails.
