#!/usr/bin/env python3
"""Act as one Python retalk user through the REFERENCE library (retalk.User).

Runs under either reference venv (retalk 0.0.1 or 0.3.x) and adapts to the
installed version. Interface (see README.md for every command's shapes):

    python driver.py COMMAND [JSON-ARGS | -]

JSON-ARGS is one JSON object (or "-" / nothing: read it from stdin; an
absent argument means {}). Exactly one JSON object is printed on stdout.
Exit 0 with the result, or exit 1 with {"error": TEXT, "type": EXC-CLASS}
when the library (or the relay through it) raised. Exit 2 with {"error"} for
a usage error (unknown command, bad JSON, missing argument). Anything the
library itself prints goes to stderr, so stdout stays one JSON object.

Common args for commands that need a user:
    store   path of the SQLite store file (the library's `store=`), or
    dir     an identity folder as the CLIs make it (uses DIR/store.db)
    secret  pickle_secret (0.0.1) / passphrase (0.3.x)
    server  relay URL; also the audience the requests are signed for
    post_url  optional: POST to this URL instead, while still signing for
            `server` (a relay whose audience is not the address it listens on)
    name    self-chosen display name (default "")
    names   optional {peer_id: local name}
    pins    optional {peer_id: identity_key} (0.3.x: identity_keys=)
    user_kwargs  optional extra keyword args for User(...) (0.3.x: api_key,
            blocked, receive_policy, known, left_groups, ...)
"""

import contextlib
import hashlib
import inspect
import io
import json
import os
import sqlite3
import sys
import time
import urllib.error
import urllib.request

try:
    import retalk
    from retalk import user as retalk_user
    from retalk.user import User
except Exception as e:  # pragma: no cover - wrong interpreter
    print(json.dumps({"error": f"cannot import retalk: {e}",
                      "type": type(e).__name__}))
    sys.exit(2)


class UsageError(Exception):
    pass


# ---------- version adaptation ----------

_INIT_PARAMS = inspect.signature(User.__init__).parameters
MODERN = "passphrase" in _INIT_PARAMS          # 0.3.x API
LEGACY = "pickle_secret" in _INIT_PARAMS       # 0.0.1 API
VERSION = getattr(retalk, "__version__", "unknown")


def _need(a, key):
    if key not in a or a[key] is None:
        raise UsageError(f"missing argument: {key}")
    return a[key]


def _store_path(a):
    if a.get("store"):
        return str(a["store"])
    if a.get("dir"):
        os.makedirs(a["dir"], exist_ok=True)
        return os.path.join(str(a["dir"]), "store.db")
    raise UsageError("missing argument: store (file) or dir (identity folder)")


def make_user(a, server=None):
    """Open (or create) the user described by the common args."""
    u = _make_user(a, server)
    post_url = a.get("post_url")
    if post_url:
        signed_call_raw = u._call_raw        # reads u.server_url when called

        def call_raw(tool, wire):
            audience = u.server_url
            u.server_url = post_url
            try:
                return signed_call_raw(tool, wire)
            finally:
                u.server_url = audience

        u._call_raw = call_raw
    return u


def _make_user(a, server):
    kw = {"name": a.get("name") or "", "store": _store_path(a)}
    if a.get("names"):
        kw["names"] = dict(a["names"])
    pins = a.get("pins") or a.get("identity_keys")
    server = server if server is not None else _need(a, "server")
    secret = _need(a, "secret")
    if MODERN:
        if pins:
            kw["identity_keys"] = dict(pins)
        if a.get("api_key"):
            kw["api_key"] = a["api_key"]
        kw.update(a.get("user_kwargs") or {})
        for k in ("blocked", "known", "left_groups"):
            if k in kw and kw[k] is not None:
                kw[k] = set(kw[k])
        return User(server, secret, **kw)
    if pins:
        kw["pins"] = dict(pins)
    kw.update(a.get("user_kwargs") or {})
    return User(server, secret, **kw)


def user_id_of(u):
    return u.fingerprint() if hasattr(u, "fingerprint") else u.user_id()


def signing_key_of(u):
    if hasattr(u, "signing_key"):
        return u.signing_key()
    return u._load_account().ed25519_key.to_base64()


def _outbox_rows(store):
    conn = sqlite3.connect(store)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(outbox)")]
        if not cols:
            return []
        want = [c for c in ("id", "peer", "mtype", "ts", "gid", "body")
                if c in cols]
        rows = conn.execute(
            f"SELECT {', '.join(want)} FROM outbox ORDER BY ts, id").fetchall()
    finally:
        conn.close()
    return [dict(zip(want, r)) for r in rows]


def _normalize_message(m):
    """0.0.1 receive() yields (from, name, text) tuples; 0.3.x yields dicts
    {"id", "from", "name", "text"} (or other kinds, kept whole)."""
    if isinstance(m, dict):
        return dict(m)
    sender, name, text = m
    return {"from": sender, "name": name, "text": text}


def _outcome(fn):
    """Run fn; report {"ok": True, "result": ...} or {"ok": False, "error"}."""
    try:
        return {"ok": True, "result": fn()}
    except Exception as e:
        return {"ok": False, "error": str(e), "type": type(e).__name__}


class _ShiftedTime:
    """Stands in for the `time` module inside retalk.user, with a clock that
    is `offset` seconds off; everything else is the real module."""

    def __init__(self, offset):
        self._offset = offset

    def time(self):
        return time.time() + self._offset

    def __getattr__(self, name):
        return getattr(time, name)


@contextlib.contextmanager
def shifted_clock(offset):
    saved = retalk_user.time
    retalk_user.time = _ShiftedTime(offset)
    try:
        yield
    finally:
        retalk_user.time = saved


def _signed_wire(u, tool, args):
    wire = dict(args)
    wire["auth"] = u._auth_fields(tool, args)
    return wire


# ---------- commands ----------

def cmd_version(a):
    return {"retalk": VERSION, "api": "0.3" if MODERN else "0.0.1",
            "python": sys.version.split()[0]}


def cmd_user_id(a):
    u = make_user(a, server=a.get("server") or "")
    return {"user_id": user_id_of(u)}


def cmd_identity_key(a):
    u = make_user(a, server=a.get("server") or "")
    return {"user_id": user_id_of(u), "identity_key": u.identity_key(),
            "signing_key": signing_key_of(u)}


def cmd_publish(a):
    u = make_user(a)
    u.publish(n=int(a.get("n", 100)),
              rotate_fallback=bool(a.get("rotate_fallback", False)))
    return {"ok": True, "user_id": user_id_of(u)}


def cmd_send(a):
    u = make_user(a)
    store = _store_path(a)
    before = {r["id"] for r in _outbox_rows(store)}
    ret = u.send(_need(a, "to"), _need(a, "text"))
    new = [r["id"] for r in _outbox_rows(store) if r["id"] not in before]
    # 0.3.x returns the envelope id; 0.0.1 returns the relay's send_message
    # answer {"message_id", "ts"}. The outbox row is keyed by the envelope id
    # in both, so outbox_id is the id the recipient's ack will carry.
    return {"id": ret if isinstance(ret, str) else None,
            "result": ret if not isinstance(ret, str) else None,
            "outbox_id": new[0] if len(new) == 1 else None}


def cmd_receive(a):
    u = make_user(a)
    if a.get("peer"):
        if not MODERN:
            raise UsageError("receive with peer needs retalk 0.3.x")
        got = u.receive(a["peer"])
    else:
        got = u.receive()
    return {"messages": [_normalize_message(m) for m in got]}


def cmd_maintain(a):
    u = make_user(a)
    return u.maintain(**(a.get("kwargs") or {}))


def cmd_sync(a):
    u = make_user(a)
    if not hasattr(u, "sync"):
        raise UsageError("sync needs retalk 0.3.x")
    return u.sync(**(a.get("kwargs") or {}))


def cmd_flush_outbox(a):
    u = make_user(a)
    return {"resent": u.flush_outbox(float(a.get("older_than", 0.0)))}


def cmd_outbox(a):
    store = _store_path(a)
    rows = _outbox_rows(store)
    if not a.get("bodies"):
        for r in rows:
            r.pop("body", None)
    return {"outbox": rows}


def cmd_sessions(a):
    """The store's Olm sessions, read from SQLite directly: one row per
    session ({"peer"} in 0.0.1, {"peer", "sid"} in 0.3.x), ordered."""
    conn = sqlite3.connect(_store_path(a))
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(sessions)")]
        want = [c for c in ("peer", "sid") if c in cols]
        rows = conn.execute(
            f"SELECT {', '.join(want)} FROM sessions ORDER BY {', '.join(want)}"
        ).fetchall() if want else []
    finally:
        conn.close()
    return {"sessions": [dict(zip(want, r)) for r in rows]}


def cmd_group_cap(a):
    """0.3.x: User.group_cap(), which reads GET <server>/info."""
    u = make_user(a)
    if not hasattr(u, "group_cap"):
        raise UsageError("group_cap needs retalk 0.3.x")
    return {"group_cap": u.group_cap()}


def cmd_count_keys(a):
    return make_user(a)._call("count_keys")


def cmd_raw_call(a):
    u = make_user(a)
    return {"result": u._call(_need(a, "tool"), a.get("args") or {})}


def cmd_replay(a):
    """One signed request (same bytes) posted twice."""
    u = make_user(a)
    tool = a.get("tool", "count_keys")
    wire = _signed_wire(u, tool, a.get("args") or {})
    first = _outcome(lambda: u._call_raw(tool, json.loads(json.dumps(wire))))
    second = _outcome(lambda: u._call_raw(tool, json.loads(json.dumps(wire))))
    return {"first": first, "second": second}


def cmd_stale(a):
    """A request signed with a clock `offset` seconds off (default -1000)."""
    u = make_user(a)
    tool = a.get("tool", "count_keys")
    offset = float(a.get("offset", -1000))
    with shifted_clock(offset):
        wire = _signed_wire(u, tool, a.get("args") or {})
    out = _outcome(lambda: u._call_raw(tool, wire))
    out["signed_ts"] = wire["auth"].get("ts") or wire["auth"].get("timestamp")
    return out


def cmd_wrong_audience(a):
    """A request signed for `audience` but posted to `server`."""
    real = _need(a, "server")
    audience = a.get("audience") or real.rstrip("/") + "/elsewhere"
    u = make_user(a, server=audience)
    tool = a.get("tool", "count_keys")
    wire = _signed_wire(u, tool, a.get("args") or {})
    u.server_url = real
    out = _outcome(lambda: u._call_raw(tool, wire))
    out["audience"] = audience
    return out


def cmd_read_peek(a):
    """0.3.x read_messages with peek (raw relay rows, nothing deleted)."""
    args = {"peek": True}
    if a.get("peer"):
        args["peer"] = a["peer"]
    return {"messages": make_user(a)._call("read_messages", args)}


def cmd_read_peer(a):
    """0.3.x read_messages scoped to one sender (raw rows, consumed unless
    peek is set)."""
    args = {"peer": _need(a, "peer")}
    if a.get("peek"):
        args["peek"] = True
    return {"messages": make_user(a)._call("read_messages", args)}


def cmd_nack(a):
    """0.3.x: record a signed negative ack through User._send_nack. That
    method swallows relay errors, so the relay's answer is captured here."""
    u = make_user(a)
    if not hasattr(u, "_send_nack"):
        raise UsageError("nack needs retalk 0.3.x")
    h = a.get("hash") or hashlib.sha256(_need(a, "body").encode()).hexdigest()
    seen = {}
    real_call = u._call

    def recording_call(tool, args=None):
        seen["args"] = args
        try:
            seen["result"] = real_call(tool, args)
            return seen["result"]
        except Exception as e:
            seen["error"] = str(e)
            raise

    u._call = recording_call
    u._send_nack(h)
    if "error" in seen:
        raise RuntimeError(seen["error"])
    return {"hash": h, "sig": (seen.get("args") or {}).get("sig"),
            "result": seen.get("result")}


def cmd_info(a):
    """GET <server>/info (no signature, no store needed)."""
    url = _need(a, "server").rstrip("/") + "/info"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    text = body.decode(errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return {"status": status, "json": parsed, "text": text}


COMMANDS = {
    "version": cmd_version,
    "user_id": cmd_user_id,
    "identity_key": cmd_identity_key,
    "publish": cmd_publish,
    "send": cmd_send,
    "receive": cmd_receive,
    "maintain": cmd_maintain,
    "sync": cmd_sync,
    "flush_outbox": cmd_flush_outbox,
    "outbox": cmd_outbox,
    "sessions": cmd_sessions,
    "group_cap": cmd_group_cap,
    "count_keys": cmd_count_keys,
    "raw_call": cmd_raw_call,
    "replay": cmd_replay,
    "stale": cmd_stale,
    "wrong_audience": cmd_wrong_audience,
    "read_peek": cmd_read_peek,
    "read_peer": cmd_read_peer,
    "nack": cmd_nack,
    "info": cmd_info,
}


def run_command(command, a):
    """(exit code, result object, captured library output) of one command,
    exactly as `driver.py COMMAND` would exit and print."""
    captured = io.StringIO()
    try:
        if command not in COMMANDS:
            raise UsageError(f"unknown command {command!r}; commands: "
                             + " ".join(sorted(COMMANDS)))
        if not isinstance(a, dict):
            raise UsageError("JSON args must be an object")
        # the library's own prints (0.3.x warns on stderr) never reach stdout
        with contextlib.redirect_stdout(captured), \
                contextlib.redirect_stderr(captured):
            result = COMMANDS[command](a)
    except UsageError as e:
        return 2, {"error": str(e), "type": "UsageError"}, captured.getvalue()
    except Exception as e:
        return 1, {"error": str(e), "type": type(e).__name__}, \
            captured.getvalue()
    return 0, result, captured.getvalue()


def serve():
    """`driver.py serve`: one process, many commands. Reads one JSON object
    per line on stdin, {"command": NAME, "args": {...}}, and answers each
    with one line {"code": EXIT-CODE, "json": RESULT, "stderr": TEXT}: the
    exit code and stdout object `driver.py NAME` would give, and what the
    library printed. Saves the interpreter start and imports (~0.2 s) per
    call; the library keeps no state between calls (it is all on disk).
    Ends at end of input."""
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            command, a = req["command"], req.get("args") or {}
        except (ValueError, KeyError, TypeError) as e:
            code, result, text = 2, {"error": f"bad request line: {e}",
                                     "type": "UsageError"}, ""
        else:
            code, result, text = run_command(command, a)
        out.write(json.dumps({"code": code, "json": result,
                              "stderr": text}) + "\n")
        out.flush()
    return 0


def main(argv):
    out = sys.stdout
    if len(argv) >= 2 and argv[1] == "serve":
        return serve()
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(json.dumps({"error": "usage: driver.py COMMAND [JSON-ARGS|-]; "
                          "commands: " + " ".join(sorted(COMMANDS))}), file=out)
        return 2
    raw = argv[2] if len(argv) > 2 else ""
    if raw == "-":
        raw = sys.stdin.read()
    try:
        a = json.loads(raw) if raw.strip() else {}
        if not isinstance(a, dict):
            raise ValueError("JSON args must be an object")
    except ValueError as e:
        print(json.dumps({"error": f"bad JSON args: {e}"}), file=out)
        return 2
    try:
        # the library's own prints (0.3.x warns on stderr) never reach stdout
        with contextlib.redirect_stdout(sys.stderr):
            result = COMMANDS[argv[1]](a)
    except UsageError as e:
        print(json.dumps({"error": str(e), "type": "UsageError"}), file=out)
        return 2
    except Exception as e:
        print(json.dumps({"error": str(e), "type": type(e).__name__}), file=out)
        return 1
    print(json.dumps(result), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
