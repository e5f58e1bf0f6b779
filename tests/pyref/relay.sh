#!/usr/bin/env bash
# Run one version's Python reference relay in the FOREGROUND on loopback.
#
#   tests/pyref/relay.sh VERSION PORT DB [AUDIENCE] [-- EXTRA-FLAGS...]
#
#   VERSION   0.0.1 or 0.3.0 (the venv under $RETALK_PYREF_DIR, default
#             <workspace>/target/pyref, made by setup.sh)
#   PORT      TCP port to bind on 127.0.0.1 (always loopback)
#   DB        SQLite path for the relay (created if missing)
#   AUDIENCE  URL the signatures must be made for (default
#             http://127.0.0.1:PORT); 0.3.0 accepts a comma-separated list
#   EXTRA     0.3.0 only: more retalk-server flags, e.g. --rate-limit 5
#             --max-body 4096 --max-mailbox 3 (0.0.1 has no flags at all)
#
# The script execs Python, so $! of `relay.sh ... &` is the relay's own PID:
# stop it with `kill $pid`. It prints nothing when ready; poll the port.
# Both versions are configured through their env vars, never through
# --db/--host/--port (see README.md: 0.3.0 creates its schema at import time
# from RETALK_SERVER_DB, before flags are parsed, so --db alone gives a relay
# whose database has no tables).
set -euo pipefail

usage() { echo "usage: $0 VERSION PORT DB [AUDIENCE] [-- EXTRA-FLAGS...]" >&2; exit 2; }
(($# >= 3)) || usage
ver=$1 port=$2 db=$3
shift 3
aud=""
if (($#)) && [[ $1 != -- ]]; then aud=$1; shift; fi
if (($#)) && [[ $1 == -- ]]; then shift; fi
[[ $port =~ ^[0-9]+$ ]] || usage
aud=${aud:-http://127.0.0.1:$port}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${RETALK_PYREF_DIR:-$root/target/pyref}
py=$dir/venv-$ver/bin/python
[[ -x $py ]] || { echo "relay.sh: no venv at $dir/venv-$ver (run tests/pyref/setup.sh)" >&2; exit 2; }

db=$(cd "$(dirname "$db")" && pwd)/$(basename "$db")
# run from the db's folder so nothing lands in the caller's cwd
cd "$(dirname "$db")"

case $ver in
  0.0.1)
    (($# == 0)) || { echo "relay.sh: the 0.0.1 relay takes no flags (got: $*)" >&2; exit 2; }
    export SERVER_HOST=127.0.0.1 SERVER_PORT=$port SERVER_DB=$db SERVER_AUDIENCE=$aud
    exec "$py" -m retalk.server
    ;;
  0.3.*)
    for f in "$@"; do
      case $f in --host|--host=*|--port|--port=*|--db|--db=*)
        echo "relay.sh: $f is fixed by this script (loopback, PORT, DB)" >&2; exit 2 ;;
      esac
    done
    export RETALK_SERVER_HOST=127.0.0.1 RETALK_SERVER_PORT=$port \
           RETALK_SERVER_DB=$db RETALK_SERVER_AUDIENCE=$aud
    exec "$py" -m retalk.server "$@"
    ;;
  *) echo "relay.sh: unknown version '$ver'" >&2; exit 2 ;;
esac
