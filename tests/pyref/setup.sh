#!/usr/bin/env bash
# Create (or reuse) the throw-away virtualenvs holding the Python reference
# implementation of retalk, for interop tests:
#
#   $RETALK_PYREF_DIR/venv-0.0.1   retalk==0.0.1 + vodozemac==0.10.0
#   $RETALK_PYREF_DIR/venv-0.3.0   retalk==0.3.0 + vodozemac==0.10.0
#
# RETALK_PYREF_DIR defaults to <workspace>/target/pyref.
# RETALK_PYREF_PYTHON picks the interpreter (default: python3; needs >= 3.10,
# because retalk 0.0.1 uses `dict | None` annotations evaluated at import).
#
# RETALK_PYREF_SLOW=1 skips the fast path (pip-less venvs filled by the host
# pip) and uses plain `python -m venv` + the venv's own pip.
#
# Idempotent: a venv whose marker file matches the pinned set (and whose
# imports still work) is left alone. Safe to run concurrently (flock).
# Exit codes: 0 ready, 1 install failed (PyPI unreachable?), 2 no usable Python.
set -euo pipefail

start_ns=$(date +%s%N)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${RETALK_PYREF_DIR:-$root/target/pyref}
py=${RETALK_PYREF_PYTHON:-python3}

# Everything each venv holds, pinned exactly. retalk's only dependency is
# vodozemac (unpinned in both wheels' metadata); 0.10.0 is the version the
# shared fixtures were made with.
VODOZEMAC=vodozemac==0.10.0
VERSIONS=(0.0.1 0.3.0)
# bump when the recipe changes, to force a rebuild of existing venvs
RECIPE=2

die() { echo "pyref/setup.sh: $1" >&2; exit "${2:-1}"; }

command -v "$py" >/dev/null 2>&1 \
  || die "no Python interpreter '$py' on PATH (install python3 >= 3.10 or set RETALK_PYREF_PYTHON)" 2
# one interpreter start (a pyenv shim costs ~250 ms each): version + modules
pyver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])
import venv, ensurepip' 2>/dev/null) \
  || die "'$py' does not run, or lacks the venv/ensurepip modules (Debian: apt-get install python3-venv)" 2
case $pyver in
  3.[0-9].*|[0-2].*) die "'$py' is Python $pyver; the reference (retalk 0.0.1) needs >= 3.10" 2 ;;
esac

mkdir -p "$dir"
exec 9>"$dir/.setup.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

marker_text() {  # what a finished venv's marker must say
  printf 'recipe=%s\npython=%s\nretalk==%s\n%s\n' "$RECIPE" "$pyver" "$1" "$VODOZEMAC"
}

is_ready() {  # venv exists, marker matches, and the pinned versions import
  local ver=$1 venv=$dir/venv-$1
  [[ -x $venv/bin/python && -f $venv/.pyref-ready ]] || return 1
  [[ "$(cat "$venv/.pyref-ready")" == "$(marker_text "$ver")" ]] || return 1
  "$venv/bin/python" - "$ver" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import retalk, vodozemac  # noqa: F401  (import must work)
assert version("retalk") == sys.argv[1], version("retalk")
assert version("vodozemac") == "0.10.0", version("vodozemac")
EOF
}

# Fast path: a pip-less venv filled by the host's pip (`pip --python`, pip >=
# 22.3) takes ~2 s; `python -m venv` with ensurepip alone takes ~6 s.
host_pip_ok() {
  "$py" -c 'import sys, pip; v = tuple(int(x) for x in pip.__version__.split(".")[:2]); sys.exit(0 if v >= (22, 3) else 1)' 2>/dev/null
}

build() {  # (re)create one venv; output goes to a log, shown on failure
  local ver=$1 venv=$dir/venv-$1 log=$dir/venv-$1.log
  local pipargs=(install --no-input -q --disable-pip-version-check
                 --retries 2 --timeout 20 "retalk==$ver" "$VODOZEMAC")
  {
    rm -rf "$venv"
    if ((fast)); then
      "$py" -m venv --without-pip "$venv"
      "$py" -m pip --python "$venv/bin/python" "${pipargs[@]}"
    else
      "$py" -m venv "$venv"
      "$venv/bin/python" -m pip "${pipargs[@]}"
    fi
    # what the resolver installed must be exactly the pinned set
    local got
    got=$("$venv/bin/python" - <<'PY'
import importlib.metadata as m
names = sorted("%s==%s" % (d.metadata["Name"].lower(), d.version)
               for d in m.distributions())
print(" ".join(n for n in names
               if n.split("==")[0] not in ("pip", "setuptools", "wheel")))
PY
)
    [[ "$got" == "retalk==$ver vodozemac==0.10.0" ]] \
      || { echo "unexpected packages in venv-$ver: $got"; return 1; }
    marker_text "$ver" >"$venv/.pyref-ready"
  } >"$log" 2>&1
}

todo=()
for ver in "${VERSIONS[@]}"; do
  if is_ready "$ver"; then
    echo "pyref: venv-$ver ready (cached)" >&2
  else
    todo+=("$ver")
  fi
done

if ((${#todo[@]})); then
  if [[ -z ${RETALK_PYREF_SLOW:-} ]] && host_pip_ok; then fast=1; else fast=0; fi
  # both venvs install in parallel: the wall time is one pip run, not two
  pids=()
  for ver in "${todo[@]}"; do
    echo "pyref: installing retalk==$ver + $VODOZEMAC into $dir/venv-$ver" >&2
    build "$ver" & pids+=($!)
  done
  failed=()
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${todo[$i]}")
  done
  if ((${#failed[@]})); then
    for ver in "${failed[@]}"; do
      echo "---- $dir/venv-$ver.log" >&2
      tail -n 25 "$dir/venv-$ver.log" >&2 || true
      rm -rf "$dir/venv-$ver"   # never leave a half-built venv that looks usable
    done
    if grep -qiE 'No matching distribution|NewConnectionError|Connection (refused|reset)|Name or service|timed out|SSLError|ProxyError' \
         "$dir"/venv-*.log 2>/dev/null; then
      die "could not download retalk ${failed[*]} / $VODOZEMAC: PyPI looks unreachable (see the log above)" 1
    fi
    die "building venv-${failed[*]} failed (see the log above)" 1
  fi
  for ver in "${todo[@]}"; do
    is_ready "$ver" || die "venv-$ver was built but does not import retalk==$ver / $VODOZEMAC" 1
  done
fi

ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
echo "pyref: ready in ${ms} ms: $(printf "$dir/venv-%s/bin/python " "${VERSIONS[@]}")" >&2
