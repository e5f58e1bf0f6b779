"""Shim for `python -m retalk.server`: accept what retalk 0.3.0's server
accepts (its command-line flags and RETALK_SERVER_* variables, with 0.3.0's
precedence: flag > variable > default) and exec the Rust relay with the
same settings as explicit flags.

The relay binary is $RETALK_SHIM_SERVER_BIN, default
retalk-server (from PATH). os.execv replaces this process, so
the test's Popen handle (terminate()/wait()) acts on the relay itself.

RETALK_SHIM_LEGACY_ENV=1 (off by default) also reads the 0.0.x names
SERVER_* where RETALK_SERVER_* is unset, as an era adapter for old tests.

Debug aids (off by default): RETALK_SHIM_LOG=DIR sends the relay's stderr
to DIR/relay-<port>-<pid>.log; RETALK_SHIM_LOG_REQUESTS=1 adds
--log-requests.

This module offers nothing as a library: 0.3.0's server internals
(functions, constants) are not reproduced.
"""
import argparse
import os
import sys

BIN = os.environ.get("RETALK_SHIM_SERVER_BIN", "retalk-server")


def _parser():
    ap = argparse.ArgumentParser(prog="retalk-server (shim)")
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--audience")
    ap.add_argument("--db")
    ap.add_argument("--max-mailbox", type=int)
    ap.add_argument("--max-mailbox-per-sender", type=int)
    ap.add_argument("--max-body", type=int)
    ap.add_argument("--rate-limit", type=int)
    ap.add_argument("--timeout", type=float)
    ap.add_argument("--admin-password")
    ap.add_argument("--require-api-key", action="store_true", default=False)
    ap.add_argument("--max-refused", type=int)
    ap.add_argument("--refused-ttl", type=float)
    ap.add_argument("--max-group-size", type=int)
    return ap


def _num(v):
    """0.3.0 parses some options as float; pass integers as integers."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def build(argv, environ):
    """Return (argv for the relay, environment for the relay)."""
    args = _parser().parse_args(argv)
    env = dict(environ)
    if environ.get("RETALK_SHIM_LEGACY_ENV") == "1":
        # era adapter (off by default): old tests name the relay's settings
        # SERVER_*; 0.3.0 ignores those, so the faithful default does too
        environ = dict(environ)
        for k in list(environ):
            if k.startswith("SERVER_") and "RETALK_" + k not in environ:
                environ["RETALK_" + k] = environ[k]
    get = environ.get

    # 0.3.0: DB/HOST/PORT/AUDIENCE from RETALK_SERVER_* at import, then flags.
    db = args.db or get("RETALK_SERVER_DB", "server.db")
    host = args.host or get("RETALK_SERVER_HOST", "0.0.0.0")
    port = args.port or int(get("RETALK_SERVER_PORT", "8766"))
    if args.audience:
        audience = args.audience
    elif get("RETALK_SERVER_AUDIENCE"):
        audience = get("RETALK_SERVER_AUDIENCE")
    else:
        audience = "http://%s:%d" % (
            "127.0.0.1" if host == "0.0.0.0" else host, port)
    out = [BIN, "--host", host, "--port", str(port),
           "--audience", audience, "--db", db]

    def opt(flag, attr, var):
        val = getattr(args, attr)
        if val is None and get(var) not in (None, ""):
            val = get(var)
        if val is not None:
            out.extend([flag, _num(float(val)) if attr in
                        ("timeout", "refused_ttl") else str(val)])

    opt("--max-mailbox", "max_mailbox", "RETALK_SERVER_MAX_MAILBOX")
    opt("--max-mailbox-per-sender", "max_mailbox_per_sender",
        "RETALK_SERVER_MAX_MAILBOX_PER_SENDER")
    opt("--max-body", "max_body", "RETALK_SERVER_MAX_BODY")
    opt("--rate-limit", "rate_limit", "RETALK_SERVER_RATE_LIMIT")
    opt("--timeout", "timeout", "RETALK_SERVER_TIMEOUT")
    opt("--max-refused", "max_refused", "RETALK_SERVER_MAX_REFUSED")
    opt("--refused-ttl", "refused_ttl", "RETALK_SERVER_REFUSED_TTL")
    opt("--max-group-size", "max_group_size", "RETALK_SERVER_MAX_GROUP_SIZE")
    if args.require_api_key or get("RETALK_SERVER_REQUIRE_API_KEY", "").lower() \
            in ("1", "true", "yes", "on"):
        out.append("--require-api-key")
    password = args.admin_password
    if password is None:
        password = get("RETALK_SERVER_ADMIN_PASSWORD", "")

    # Everything is explicit now: drop the variables so the relay cannot
    # read them a second time (nor SERVER_*, which 0.3.0 ignores).
    for k in list(env):
        if k.startswith("RETALK_SERVER_") or k.startswith("SERVER_"):
            del env[k]
    if password:            # by variable, not flag: keep it off `ps`
        env["RETALK_SERVER_ADMIN_PASSWORD"] = password
    if env.get("RETALK_SHIM_LOG_REQUESTS") == "1":
        out.append("--log-requests")
    return out, env, port


def main(argv=None):
    out, env, port = build(sys.argv[1:] if argv is None else argv, os.environ)
    logdir = env.get("RETALK_SHIM_LOG")
    if logdir:
        os.makedirs(logdir, exist_ok=True)
        fd = os.open(os.path.join(logdir, "relay-%d-%d.log" % (port, os.getpid())),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, (" ".join(out) + "\n").encode())
        os.dup2(fd, 2)
        os.close(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(out[0], out, env)


if __name__ == "__main__":
    main()
