#!/usr/bin/env bash
# Prove the pyref groundwork works: for each reference version, start its
# Python relay on a free loopback port, then run a Python-to-Python
# conversation through driver.py (library) and a short one through the
# reference CLI. Exits non-zero on the first failed check; always stops the
# relays it started and removes its temp folder.
#
#   tests/pyref/selftest.sh [VERSION...]      (default: 0.0.1 0.3.0)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${RETALK_PYREF_DIR:-$root/target/pyref}
versions=("$@")
((${#versions[@]})) || versions=(0.0.1 0.3.0)

t0=$(date +%s%N)
bash "$here/setup.sh"
t_setup=$(( ($(date +%s%N) - t0) / 1000000 ))

# helper interpreter for JSON checks: the venv's python starts in ~40 ms,
# a pyenv-style `python3` shim can take ~250 ms per call
HPY=$dir/venv-${versions[0]}/bin/python

work=$(mktemp -d "${TMPDIR:-/tmp}/pyref-selftest.XXXXXX")
relay_pids=()
cleanup() {
  local p
  for p in "${relay_pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
fail() { echo "FAIL: $*" >&2; echo "$passed passed, 1 failed" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "  ok: $*" >&2; }

# check JSON PY-EXPR DESCRIPTION   (j is the parsed JSON)
check() {
  "$HPY" -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
    "$1" "$2" 2>/dev/null || fail "$3: expected $2, got $1"
  ok "$3"
}
# jget JSON PY-EXPR   -> prints the value (strings bare)
jget() {
  "$HPY" -c 'import json,sys; j=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(v if isinstance(v,str) else json.dumps(v))' "$1" "$2"
}
# with JSON '"k":v,...'   -> JSON with the extra members added
with() { printf '%s,%s}' "${1%\}}" "$2"; }

free_port() {
  "$HPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {  # PORT PID
  local i
  for i in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
start_relay() {  # VERSION DB [AUDIENCE] -> sets PORT, URL, RELAY_PID
  local try
  for try in 1 2 3; do
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$here/relay.sh" "$1" "$PORT" "$2" ${3:+"$3"} 2>>"$work/relay-$1.log" &
    RELAY_PID=$!
    relay_pids+=("$RELAY_PID")
    wait_port "$PORT" "$RELAY_PID" && return 0
    kill "$RELAY_PID" 2>/dev/null || true
    wait "$RELAY_PID" 2>/dev/null || true
  done
  cat "$work/relay-$1.log" >&2
  fail "relay $1 did not start"
}
stop_relay() {  # PID
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  kill -0 "$1" 2>/dev/null && fail "relay $1 still running"
  return 0
}

# drv COMMAND JSON  -> stdout JSON, must exit 0 (uses $PY)
drv() {
  local out rc=0
  out=$("$PY" "$here/driver.py" "$1" "$2" 2>>"$work/driver.log") || rc=$?
  ((rc == 0)) || fail "driver $1 exited $rc: $out"
  printf '%s' "$out"
}
# drv_err COMMAND JSON  -> stdout JSON, must exit 1 (library raised)
drv_err() {
  local out rc=0
  out=$("$PY" "$here/driver.py" "$1" "$2" 2>>"$work/driver.log") || rc=$?
  ((rc == 1)) || fail "driver $1 should have failed (exit 1), exited $rc: $out"
  printf '%s' "$out"
}

conversation() {  # VERSION: library-level conversation through driver.py
  local ver=$1 w=$work/lib-$ver
  mkdir -p "$w"
  PY=$dir/venv-$ver/bin/python
  start_relay "$ver" "$w/relay.db"
  echo "== $ver library via driver.py, relay $URL (pid $RELAY_PID)" >&2
  local A B out aid bid
  A="{\"store\":\"$w/alice.db\",\"secret\":\"alice-secret\",\"server\":\"$URL\",\"name\":\"alice\"}"
  B="{\"store\":\"$w/bob.db\",\"secret\":\"bob-secret\",\"server\":\"$URL\",\"name\":\"bob\"}"

  out=$(drv version '{}'); check "$out" "j['retalk']=='$ver'" "venv runs retalk $ver"
  aid=$(jget "$(drv user_id "$A")" "j['user_id']")
  bid=$(jget "$(drv user_id "$B")" "j['user_id']")
  out=$(drv identity_key "$A")
  check "$out" "j['user_id']=='$aid' and __import__('hashlib').sha256((j['identity_key']+'|'+j['signing_key']).encode()).hexdigest()[:32]=='$aid'" "user id = sha256(identity_key|signing_key)[:32]"
  local B_named; B_named=$(with "$B" "\"names\":{\"$aid\":\"alice-local\"}")

  out=$(drv publish "$A"); check "$out" "j['ok'] and j['user_id']=='$aid'" "alice publishes"
  out=$(drv publish "$B"); check "$out" "j['ok']" "bob publishes"
  out=$(drv count_keys "$B"); check "$out" "j=={'unclaimed':100,'has_fallback':True}" "count_keys after publish"

  out=$(drv send "$(with "$A" "\"to\":\"$bid\",\"text\":\"hello bob ✓\"")")
  if [[ $ver == 0.0.1 ]]; then
    check "$out" "j['id'] is None and isinstance(j['result']['message_id'],int) and len(j['outbox_id'])==32" "0.0.1 send returns the relay's {message_id, ts}"
  else
    check "$out" "len(j['id'])==32 and j['id']==j['outbox_id']" "0.3 send returns the envelope id"
  fi
  local first_id; first_id=$(jget "$out" "j['outbox_id']")
  out=$(drv outbox "$A"); check "$out" "[r['id'] for r in j['outbox']]==['$first_id'] and j['outbox'][0]['peer']=='$bid'" "alice's outbox holds the unacked message"
  out=$(drv count_keys "$B"); check "$out" "j['unclaimed']==99" "alice claimed one of bob's one-time keys"

  out=$(drv receive "$B_named")
  if [[ $ver == 0.0.1 ]]; then
    check "$out" "j['messages']==[{'from':'$aid','name':'alice-local','text':'hello bob ✓'}]" "bob receives (local name wins)"
  else
    check "$out" "j['messages']==[{'id':'$first_id','from':'$aid','name':'alice-local','text':'hello bob ✓'}]" "bob receives with the envelope id"
  fi
  out=$(drv receive "$B"); check "$out" "j['messages']==[]" "mailbox drained after read"

  out=$(drv send "$(with "$B" "\"to\":\"$aid\",\"text\":\"hi alice\"")")
  out=$(drv receive "$A"); check "$out" "[(m['from'],m['name'],m['text']) for m in j['messages']]==[('$bid','~bob','hi alice')]" "alice gets the reply (unverified name shown as ~bob)"
  out=$(drv outbox "$A"); check "$out" "j['outbox']==[]" "bob's ack emptied alice's outbox"
  out=$(drv outbox "$B"); check "$out" "len(j['outbox'])==1" "bob's reply awaits alice's ack"
  out=$(drv receive "$B"); check "$out" "j['messages']==[]" "bob reads only the ack"
  out=$(drv outbox "$B"); check "$out" "j['outbox']==[]" "alice's ack emptied bob's outbox"

  # resend of an already-decrypted message: surfaced once, re-acked
  out=$(drv send "$(with "$A" "\"to\":\"$bid\",\"text\":\"once\"")")
  out=$(drv flush_outbox "$(with "$A" '"older_than":0')"); check "$out" "j=={'resent':1}" "flush_outbox re-sends the unacked message"
  out=$(drv receive "$B"); check "$out" "[m['text'] for m in j['messages']]==['once']" "a duplicate copy is not surfaced twice"
  out=$(drv receive "$A"); check "$out" "j['messages']==[]" "alice reads the (re-)acks"
  out=$(drv outbox "$A"); check "$out" "j['outbox']==[]" "outbox empty after the duplicate's re-ack"

  # signed-request failures, as the reference client reports them
  out=$(drv replay "$A"); check "$out" "j['first']['ok'] and not j['second']['ok'] and 'replay detected' in j['second']['error']" "replayed request refused"
  out=$(drv stale "$A"); check "$out" "not j['ok'] and 'stale or future timestamp' in j['error']" "stale timestamp refused"
  out=$(drv stale "$(with "$A" '"offset":100')"); check "$out" "j['ok']" "100 s of skew is inside the 150 s window"
  out=$(drv wrong_audience "$A"); check "$out" "not j['ok'] and 'bad signature' in j['error']" "wrong audience refused"
  out=$(drv_err send "$(with "$A" '"to":"00000000000000000000000000000000","text":"x"')")
  check "$out" "'unknown peer or no published keys' in j['error']" "send to an unknown peer fails with the relay's reason"
  out=$(drv raw_call "$(with "$A" "\"tool\":\"get_keys\",\"args\":{\"peer\":\"$bid\"}")")
  check "$out" "set(j['result'])=={'identity_key','signing_key'}" "raw_call get_keys"

  out=$(drv maintain "$(with "$A" '"kwargs":{"min_otks":150,"batch":10}')")
  check "$out" "j['replenished'] is True and j['unclaimed']==100 and j['resent']==0" "maintain replenishes below min_otks"
  out=$(drv count_keys "$A"); check "$out" "j['unclaimed']==110" "maintain published the batch"

  out=$(drv info "{\"server\":\"$URL\"}")
  if [[ $ver == 0.0.1 ]]; then
    check "$out" "j['status']==501 and j['json'] is None" "0.0.1 relay answers GET with 501"
  else
    check "$out" "j['status']==200 and j['json']=={'max_group_size':100}" "0.3 GET /info"
  fi

  if [[ $ver != 0.0.1 ]]; then
    # 0.3.x: peek / peer-scoped reads, nack
    drv send "$(with "$A" "\"to\":\"$bid\",\"text\":\"peek me\"")" >/dev/null
    out=$(drv read_peek "$B"); check "$out" "len(j['messages'])==1 and j['messages'][0]['from']=='$aid'" "peek shows the message"
    out=$(drv read_peek "$B"); check "$out" "len(j['messages'])==1" "peek did not consume it"
    out=$(drv read_peer "$(with "$B" '"peer":"ffffffffffffffffffffffffffffffff"')"); check "$out" "j['messages']==[]" "peer-scoped read of another sender is empty"
    out=$(drv read_peer "$(with "$B" "\"peer\":\"$aid\"")"); check "$out" "len(j['messages'])==1" "peer-scoped read returns it"
    local body; body=$(jget "$out" "j['messages'][0]['body']")
    out=$(drv read_peek "$B"); check "$out" "j['messages']==[]" "peer-scoped read consumed it"
    out=$(drv nack "$(with "$B" "\"body\":\"$body\"")"); check "$out" "j['result']=={'ok':True} and len(j['hash'])==64" "bob nacks the body"
    out=$(drv flush_outbox "$A"); check "$out" "j=={'resent':0}" "the nacked resend is refused by the relay"
    out=$(drv outbox "$A"); check "$out" "j['outbox']==[]" "alice verified the nack and dropped it"
    drv send "$(with "$A" "\"to\":\"$bid\",\"text\":\"fresh session\"")" >/dev/null
    out=$(drv receive "$(with "$B" "\"peer\":\"$aid\"")"); check "$out" "[m['text'] for m in j['messages']]==['fresh session']" "after a nack the next send starts a fresh session"
    out=$(drv_err nack "$(with "$B" '"hash":"nothex"')"); check "$out" "'64-char' in j['error']" "nack of a malformed hash reports the relay's reason"
  fi

  stop_relay "$RELAY_PID"
  ok "relay $ver stopped"
}

cross_version() {  # a 0.0.1 client at a 0.3 relay and back: incompatible
  local w=$work/cross out
  mkdir -p "$w"
  PY=$dir/venv-0.3.0/bin/python; start_relay 0.3.0 "$w/r3.db"; local u3=$URL p3=$RELAY_PID
  PY=$dir/venv-0.0.1/bin/python; start_relay 0.0.1 "$w/r1.db"; local u1=$URL p1=$RELAY_PID
  echo "== cross-version clients" >&2
  PY=$dir/venv-0.0.1/bin/python
  out=$(drv_err count_keys "{\"store\":\"$w/old.db\",\"secret\":\"s\",\"server\":\"$u3\"}")
  check "$out" "j['error']==\"server error from count_keys: 'fingerprint'\"" "0.0.1 client at a 0.3 relay: KeyError 'fingerprint'"
  PY=$dir/venv-0.3.0/bin/python
  out=$(drv_err count_keys "{\"store\":\"$w/new.db\",\"secret\":\"s\",\"server\":\"$u1\"}")
  check "$out" "j['error']==\"server error from count_keys: 'user_id'\"" "0.3 client at a 0.0.1 relay: KeyError 'user_id'"
  stop_relay "$p3"; stop_relay "$p1"

  # a relay whose audience is not its listening address (behind a proxy)
  local aud=https://relay.example.test ver
  for ver in 0.0.1 0.3.0; do
    PY=$dir/venv-$ver/bin/python
    start_relay "$ver" "$w/aud-$ver.db" "$aud"
    local U="{\"store\":\"$w/aud-$ver.user.db\",\"secret\":\"s\",\"server\":\"$aud\",\"post_url\":\"$URL\"}"
    out=$(drv count_keys "$U"); check "$out" "j=={'unclaimed':0,'has_fallback':False}" "$ver relay with audience $aud (post_url)"
    out=$(drv wrong_audience "$(with "$U" "\"audience\":\"$URL\"")")
    check "$out" "not j['ok'] and 'bad signature' in j['error']" "$ver relay refuses its listening URL as audience"
    stop_relay "$RELAY_PID"
  done
}

cli() {  # VERSION: the reference CLI, as README.md documents it
  local ver=$1 w=$work/cli-$ver out aid bid
  mkdir -p "$w/home"
  PY=$dir/venv-$ver/bin/python
  local R=$dir/venv-$ver/bin/retalk
  start_relay "$ver" "$w/relay.db"
  echo "== $ver CLI, relay $URL (pid $RELAY_PID)" >&2
  # a clean environment: HOME etc. inside the temp dir, no inherited config
  local E=(env -i "PATH=$PATH" "HOME=$w/home" "LANG=C.UTF-8"
           "XDG_DATA_HOME=$w/home/xdg" "RETALK_HOME=$w/home/retalk")
  if [[ $ver == 0.0.1 ]]; then
    aid=$("${E[@]}" PICKLE_SECRET=s-alice "$R" init "$w/alice" --name alice --server "$URL" 2>>"$work/cli.log") \
      || fail "0.0.1 init"
    bid=$("${E[@]}" PICKLE_SECRET=s-bob "$R" init "$w/bob" --name bob 2>>"$work/cli.log") \
      || fail "0.0.1 init (no server saved)"
    [[ $aid =~ ^[0-9a-f]{32}$ && $bid =~ ^[0-9a-f]{32}$ ]] || fail "0.0.1 init prints the user id ($aid, $bid)"
    ok "0.0.1 init DIR prints the user id"
    "${E[@]}" "$R" add bob "$bid" -s "$w/alice" 2>>"$work/cli.log" || fail "0.0.1 add"
    "${E[@]}" "$R" add alice "$aid" -s "$w/bob" 2>>"$work/cli.log" || fail "0.0.1 add"
    ok "0.0.1 add NAME ID -s DIR"
    out=$("${E[@]}" PICKLE_SECRET=s-bob SERVER_URL="$URL" "$R" receive --json -s "$w/bob" 2>>"$work/cli.log") \
      || fail "0.0.1 receive (publishes bob)"
    [[ -z $out ]] || fail "empty mailbox prints nothing, got $out"
    out=$("${E[@]}" PICKLE_SECRET=s-alice "$R" send bob "hi from the cli" -s "$w/alice" 2>>"$work/cli.log") \
      || fail "0.0.1 send"
    [[ -z $out ]] || fail "0.0.1 send prints nothing on stdout, got $out"
    ok "0.0.1 send PEER TEXT -s DIR"
    out=$("${E[@]}" PICKLE_SECRET=s-bob "$R" receive --json --server "$URL" -s "$w/bob" 2>>"$work/cli.log") \
      || fail "0.0.1 receive"
    check "$out" "j=={'from':'$aid','name':'alice','text':'hi from the cli'}" "0.0.1 receive --json"
    # the CLI identity folder works with the driver too
    out=$(drv outbox "{\"dir\":\"$w/alice\"}"); check "$out" "len(j['outbox'])==1" "driver reads a CLI store (outbox awaits ack)"
    out=$(drv receive "{\"dir\":\"$w/alice\",\"secret\":\"s-alice\",\"server\":\"$URL\"}"); check "$out" "j['messages']==[]" "driver receive on the CLI store takes the ack"
    out=$(drv outbox "{\"dir\":\"$w/alice\"}"); check "$out" "j['outbox']==[]" "ack emptied the CLI store's outbox"
  else
    aid=$("${E[@]}" RETALK_PASSPHRASE=s-alice "$R" init --dir "$w/alice" --display-name alice --relay "$URL" 2>>"$work/cli.log") \
      || fail "0.3 init"
    bid=$("${E[@]}" RETALK_PASSPHRASE=s-bob RETALK_RELAY="$URL" "$R" init --dir "$w/bob" --display-name bob 2>>"$work/cli.log") \
      || fail "0.3 init (relay from env)"
    [[ $aid =~ ^[0-9a-f]{32}$ && $bid =~ ^[0-9a-f]{32}$ ]] || fail "0.3 init prints the id ($aid, $bid)"
    ok "0.3 init --dir DIR prints the fingerprint and registers"
    PY=$dir/venv-$ver/bin/python
    out=$(drv count_keys "{\"dir\":\"$w/bob\",\"secret\":\"s-bob\",\"server\":\"$URL\"}")
    check "$out" "j=={'unclaimed':100,'has_fallback':True}" "0.3 init published bob's keys"
    "${E[@]}" "$R" add "$bid" --peer bob --dir "$w/alice" 2>>"$work/cli.log" || fail "0.3 add"
    "${E[@]}" "$R" add "$aid" --peer alice --dir "$w/bob" 2>>"$work/cli.log" || fail "0.3 add"
    ok "0.3 add FP --peer NAME --dir DIR"
    out=$("${E[@]}" RETALK_PASSPHRASE=s-alice "$R" send --peer bob "hi from the cli" --dir "$w/alice" 2>>"$work/cli.log") \
      || fail "0.3 send"
    check "$out" "j['to']=='$bid' and len(j['id'])==32" "0.3 send prints {id, to}"
    local mid; mid=$(jget "$out" "j['id']")
    local rc=0
    "${E[@]}" RETALK_PASSPHRASE=s-bob "$R" receive --json --peer alice --dir "$w/bob" >/dev/null 2>&1 || rc=$?
    ((rc == 2)) || fail "0.3 receive --json should be a usage error (2), got $rc"
    ok "0.3 receive has no --json flag (exit 2)"
    out=$("${E[@]}" RETALK_PASSPHRASE=s-bob "$R" receive --peer alice --dir "$w/bob" 2>>"$work/cli.log") \
      || fail "0.3 receive"
    check "$out" "j=={'id':'$mid','from':'$aid','name':'alice','text':'hi from the cli'}" "0.3 receive --peer prints NDJSON"
    out=$("${E[@]}" RETALK_PASSPHRASE=s-alice RETALK_RELAY="$URL" "$R" receive --all --dir "$w/alice" 2>>"$work/cli.log") \
      || fail "0.3 receive --all"
    [[ -z $out ]] || fail "only an ack was pending, got $out"
    out=$(drv outbox "{\"dir\":\"$w/alice\"}"); check "$out" "j['outbox']==[]" "ack emptied the CLI store's outbox"
  fi
  stop_relay "$RELAY_PID"
}

t1=$(date +%s%N)
for ver in "${versions[@]}"; do
  s=$(date +%s%N); conversation "$ver"; echo "   ($ver library: $(( ($(date +%s%N) - s) / 1000000 )) ms)" >&2
  s=$(date +%s%N); cli "$ver"; echo "   ($ver CLI: $(( ($(date +%s%N) - s) / 1000000 )) ms)" >&2
done
if [[ " ${versions[*]} " == *" 0.0.1 "* && " ${versions[*]} " == *" 0.3.0 "* ]]; then
  cross_version
fi
t_tests=$(( ($(date +%s%N) - t1) / 1000000 ))

for p in "${relay_pids[@]}"; do
  kill -0 "$p" 2>/dev/null && fail "relay pid $p still running"
done
echo "pyref selftest: setup ${t_setup} ms, checks ${t_tests} ms" >&2
echo "$passed passed, 0 failed"
