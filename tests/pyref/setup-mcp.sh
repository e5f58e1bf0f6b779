#!/usr/bin/env bash
# Create (or reuse) the virtualenv holding the official Python MCP SDK, the
# independent client the `retalk mcp` tests drive the server with:
#
#   $RETALK_PYREF_DIR/venv-mcp   mcp==2.3.0 (and its dependencies, pinned by
#                                tests/pyref/mcp-constraints.txt)
#
# RETALK_PYREF_DIR defaults to <workspace>/target/pyref; RETALK_PYREF_PYTHON
# picks the interpreter (default python3; the SDK needs >= 3.10).
# Idempotent (a marker records the pinned set) and safe to run concurrently.
# Exit codes: 0 ready, 1 install failed (PyPI unreachable?), 2 no usable Python.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${RETALK_PYREF_DIR:-$root/target/pyref}
py=${RETALK_PYREF_PYTHON:-python3}
MCP=mcp==2.3.0
constraints=$here/mcp-constraints.txt
venv=$dir/venv-mcp
log=$dir/venv-mcp.log

die() { echo "pyref/setup-mcp.sh: $1" >&2; exit "${2:-1}"; }

command -v "$py" >/dev/null 2>&1 \
  || die "no Python interpreter '$py' on PATH (install python3 >= 3.10 or set RETALK_PYREF_PYTHON)" 2
pyver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])
import venv, ensurepip' 2>/dev/null) \
  || die "'$py' does not run, or lacks the venv/ensurepip modules (Debian: apt-get install python3-venv)" 2
case $pyver in
  3.[0-9].*|[0-2].*) die "'$py' is Python $pyver; the MCP SDK needs >= 3.10" 2 ;;
esac

mkdir -p "$dir"
exec 9>"$dir/.setup-mcp.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

marker="python=$pyver
$MCP
$(sha256sum "$constraints" | cut -d' ' -f1)"

if [[ -x $venv/bin/python && -f $venv/.mcp-ready && "$(cat "$venv/.mcp-ready")" == "$marker" ]] \
   && "$venv/bin/python" -c 'import mcp, mcp.client.stdio' >/dev/null 2>&1; then
  echo "pyref: venv-mcp ready (cached): $venv/bin/python" >&2
  exit 0
fi

echo "pyref: installing $MCP into $venv" >&2
if ! {
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --no-input -q --disable-pip-version-check \
    --retries 2 --timeout 20 -c "$constraints" "$MCP"
  "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("mcp") == "2.3.0"'
} >"$log" 2>&1; then
  tail -n 25 "$log" >&2 || true
  rm -rf "$venv"
  if grep -qiE 'No matching distribution|NewConnectionError|Connection (refused|reset)|Name or service|timed out|SSLError|ProxyError' "$log"; then
    die "could not download $MCP: PyPI looks unreachable (see the log above)" 1
  fi
  die "building venv-mcp failed (see the log above)" 1
fi
printf '%s' "$marker" >"$venv/.mcp-ready"
echo "pyref: venv-mcp ready: $venv/bin/python" >&2
