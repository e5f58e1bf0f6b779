"""Drives `retalk mcp` with the official Python MCP SDK (an independent client).

Usage: driver.py CONFIG.json   (CONFIG: {"retalk", "relay", "dead_relay", "alice", "bob",
                                          "passphrase", "messages"})

Two identities, each served by its own `retalk mcp` process, talk through tools. Alice's
client uses the initialize handshake (resources/subscribe, logging); Bob's negotiates
whatever the SDK prefers (2026-07-28 `subscriptions/listen` when the server offers it).
Checks, each an assertion (exit 1 with a traceback on failure):

  tools      every tool is listed with an object input schema and an output schema
  talk       add + verify both ways, send, receive, history in both directions
  push       a new message is announced (resources/updated + a log message) while nothing
             is fetched, and the announcement takes nothing: receive returns it afterwards
  wait       a wait already in progress returns the peer's message right after its send
  cancel     a cancelled wait returns, the server serves on, and the message sent after the
             cancellation is not lost
  errors     unknown peer, bad arguments, out-of-range timeout, relay down: tool errors with
             a hint (isError, structured {error, hint, code}); the server survives each
  follow     one server beside `retalk receive --follow` on the same identity: N messages,
             none lost, none returned twice (across both readers)

Prints one JSON report on stdout: the tool list with schemas, protocol versions, latencies.
"""

import json
import os
import subprocess
import sys
import time

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

INBOX = "retalk://inbox"
cfg = json.load(open(sys.argv[1]))
report = {}


def params(dir_, relay=None, extra=()):
    env = {
        "PICKLE_SECRET": cfg["passphrase"],
        "RETALK_LOG": "warn",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    return StdioServerParameters(
        command=cfg["retalk"],
        args=["mcp", "-s", dir_, "--relay", relay or cfg["relay"], *extra],
        env=env,
    )


def ok(result):
    """The structured content of a successful tool result."""
    assert not result.is_error, f"tool error: {result.content}"
    sc = result.structured_content
    assert isinstance(sc, dict), f"no structured content: {result}"
    text = result.content[0].text
    assert json.loads(text) == sc, "the text block is not the structured content"
    return sc


def err(result, code=None):
    """The structured content of a tool error."""
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    sc = result.structured_content
    assert isinstance(sc, dict) and sc.get("error"), f"no error object: {result}"
    assert sc.get("hint"), f"no hint: {sc}"
    if code:
        assert sc["code"] == code, f"code {sc['code']!r}, expected {code!r}: {sc}"
    return sc


class Events:
    def __init__(self):
        self.updated = []  # times of resources/updated for the inbox
        self.logs = []  # (time, data) of log messages
        self.changed = anyio.Event()

    def poke(self):
        self.changed.set()
        self.changed = anyio.Event()

    async def on_message(self, message):
        if isinstance(message, Exception):
            return
        root = getattr(message, "root", message)
        if isinstance(root, types.ResourceUpdatedNotification) and root.params.uri == INBOX:
            self.updated.append(time.monotonic())
            self.poke()

    async def on_log(self, p):
        self.logs.append((time.monotonic(), p.data))
        self.poke()

    async def until(self, pred, seconds):
        with anyio.fail_after(seconds):
            while not pred():
                await self.changed.wait()


async def wait_for_texts(client, n, peer=None, seconds=20):
    got = []
    with anyio.fail_after(seconds):
        while len(got) < n:
            args = {"timeout": 5}
            if peer:
                args["peer"] = peer
            got += ok(await client.call_tool("wait", args))["messages"]
    return got


async def main():
    ev_a, ev_b = Events(), Events()
    async with Client(
        params(cfg["alice"]),
        mode="legacy",
        message_handler=ev_a.on_message,
        logging_callback=ev_a.on_log,
        read_timeout_seconds=70,
    ) as alice, Client(
        params(cfg["bob"]),
        message_handler=ev_b.on_message,
        read_timeout_seconds=70,
    ) as bob:
        report["protocol"] = {"alice": alice.protocol_version, "bob": bob.protocol_version}

        # ---- tools: every tool with its schemas
        tools = (await alice.list_tools()).tools
        names = sorted(t.name for t in tools)
        want = sorted(["id", "contacts", "add", "verify", "block", "send", "receive", "wait",
                       "history", "sync"])
        assert names == want, names
        report["tools"] = []
        for t in sorted(tools, key=lambda t: t.name):
            assert t.input_schema.get("type") == "object", t
            assert t.output_schema and t.output_schema.get("type") == "object", t.name
            assert t.description and len(t.description) > 40, t.name
            report["tools"].append({
                "name": t.name, "description": t.description,
                "inputSchema": t.input_schema, "outputSchema": t.output_schema,
                "annotations": t.annotations.model_dump(exclude_none=True, by_alias=True)
                if t.annotations else None,
            })
        send_schema = next(t for t in tools if t.name == "send").input_schema
        assert sorted(send_schema["required"]) == ["peer", "text"], send_schema
        resources = (await alice.list_resources()).resources
        assert [str(r.uri) for r in resources] == [INBOX], resources

        # ---- talk: cards, contacts, verification
        a_id = ok(await alice.call_tool("id", {}))
        b_id = ok(await bob.call_tool("id", {}))
        assert a_id["fingerprint"] != b_id["fingerprint"]
        r = ok(await alice.call_tool("add", {"fingerprint": b_id["fingerprint"], "name": "bob",
                                            "verify": True}))
        assert r == {"name": "bob", "fingerprint": b_id["fingerprint"], "added": "new",
                     "verified": True}, r
        ok(await bob.call_tool("add", {"fingerprint": a_id["fingerprint"], "name": "alice"}))
        v = ok(await bob.call_tool("verify", {"peer": "alice"}))
        assert v["verified"] and v["identity_key"] == a_id["identity_key"], v
        c = ok(await bob.call_tool("contacts", {}))
        assert c["contacts"] == [{"name": "alice", "fingerprint": a_id["fingerprint"],
                                  "verified": True}], c

        # ---- push: alice subscribes; bob's message is announced, not taken
        await alice.subscribe_resource(INBOX)
        await alice.set_logging_level("info")
        sent = ok(await bob.call_tool("send", {"peer": "alice", "text": "hello alice"}))
        assert sent["to"] == a_id["fingerprint"] and len(sent["id"]) == 32, sent
        t_sent = time.monotonic()
        await ev_a.until(lambda: ev_a.updated and any(d.get("event") == "mail"
                                                      for _, d in ev_a.logs), 15)
        mail_logs = [d for _, d in ev_a.logs if d.get("event") == "mail"]
        assert mail_logs[0]["count"] == 1, mail_logs
        assert mail_logs[0]["senders"] == [{"from": b_id["fingerprint"], "name": "bob"}], mail_logs
        assert "hello alice" not in json.dumps(mail_logs), "an announcement carried text"
        report["push_announce_ms"] = round((ev_a.updated[0] - t_sent) * 1000, 1)
        inbox = json.loads((await alice.read_resource(INBOX)).contents[0].text)
        assert inbox["pending"] == 1 and inbox["messages"][0]["id"] == sent["id"], inbox
        got = ok(await alice.call_tool("receive", {"peer": "bob"}))["messages"]
        assert [(m["id"], m["text"], m["name"], m["contact"]) for m in got] == \
            [(sent["id"], "hello alice", "bob", True)], got
        assert ok(await alice.call_tool("receive", {}))["messages"] == [], "returned twice"

        # ---- wait: one already in progress returns right after the peer's send
        latencies = []
        for i in range(5):
            async with anyio.create_task_group() as tg:
                result = {}

                async def waiter():
                    result["r"] = ok(await alice.call_tool("wait", {"timeout": 30, "peer": "bob"}))
                    result["t"] = time.monotonic()

                tg.start_soon(waiter)
                await anyio.sleep(0.5)  # the wait is held on the relay by now
                s = ok(await bob.call_tool("send", {"peer": "alice", "text": f"ping {i}"}))
                t0 = time.monotonic()
            msgs = result["r"]["messages"]
            assert [m["text"] for m in msgs] == [f"ping {i}"], msgs
            assert not result["r"]["timed_out"]
            assert msgs[0]["id"] == s["id"]
            latencies.append((result["t"] - t0) * 1000)
        report["wait_after_send_ms"] = [round(x, 1) for x in latencies]
        # Returned by the push, not by the 30 s time-out.
        assert max(latencies) < 5000, latencies

        # ---- history: both directions, newest last
        ok(await alice.call_tool("send", {"peer": "bob", "text": "hi bob"}))
        back = await wait_for_texts(bob, 1, peer="alice")
        assert [m["text"] for m in back] == ["hi bob"], back
        h = ok(await alice.call_tool("history", {"peer": "bob"}))["messages"]
        assert [(e["direction"], e["text"]) for e in h] == \
            [("in", "hello alice")] + [("in", f"ping {i}") for i in range(5)] + [("out", "hi bob")], h
        h2 = ok(await alice.call_tool("history", {"peer": "bob", "limit": 2}))
        assert [e["text"] for e in h2["messages"]] == ["ping 4", "hi bob"] and h2["omitted"] == 5
        hb = ok(await bob.call_tool("history", {}))["messages"]
        assert [e["direction"] for e in hb].count("out") == 6 and hb[-1]["text"] == "hi bob", hb

        # ---- bob's notifications (subscriptions/listen on 2026-07-28, else resources/subscribe)
        if bob.protocol_version >= "2026-07-28":
            async with bob.listen(resource_subscriptions=[INBOX]) as sub:
                ok(await alice.call_tool("send", {"peer": "bob", "text": "listen"}))
                with anyio.fail_after(15):
                    async for event in sub:
                        if getattr(event, "uri", None) == INBOX or INBOX in repr(event):
                            break
            report["bob_notified_by"] = "subscriptions/listen"
        else:
            await bob.subscribe_resource(INBOX)
            ok(await alice.call_tool("send", {"peer": "bob", "text": "listen"}))
            await ev_b.until(lambda: ev_b.updated, 15)
            report["bob_notified_by"] = "resources/subscribe"
        assert [m["text"] for m in await wait_for_texts(bob, 1)] == ["listen"]

        # ---- cancel: a cancelled wait ends, the server serves on, nothing is lost
        with anyio.move_on_after(1.0) as scope:
            await alice.call_tool("wait", {"timeout": 40})
        assert scope.cancelled_caught, "the wait returned by itself"
        t = time.monotonic()
        ok(await alice.call_tool("id", {}))
        report["call_after_cancel_ms"] = round((time.monotonic() - t) * 1000, 1)
        ok(await bob.call_tool("send", {"peer": "alice", "text": "after cancel"}))
        assert [m["text"] for m in await wait_for_texts(alice, 1)] == ["after cancel"]

        # ---- errors: tool errors with hints; the server keeps serving
        errors = {}
        e = err(await alice.call_tool("send", {"peer": "nobody", "text": "x"}), "unknown_peer")
        errors["unknown peer"] = e
        e = err(await alice.call_tool("send", {"peer": "bob"}), "bad_arguments")
        errors["missing argument"] = e
        e = err(await alice.call_tool("send", {"peer": "bob", "text": 5}), "bad_arguments")
        e = err(await alice.call_tool("wait", {"timeout": 999}), "bad_arguments")
        errors["timeout out of range"] = e
        e = err(await alice.call_tool("add", {"fingerprint": "abc"}), "bad_arguments")
        e = err(await alice.call_tool("add", {"fingerprint": a_id["fingerprint"], "name": "bob"}),
                "name_taken")
        errors["name taken"] = e
        e = err(await alice.call_tool("receive", {"peer": "bob", "all": True}), "bad_arguments")
        e = err(await alice.call_tool("history", {"limit": 0}), "bad_arguments")
        e = err(await alice.call_tool("verify", {"peer": "stranger"}), "unknown_peer")
        e = err(await alice.call_tool("send", {"peer": a_id["fingerprint"], "text": "me"}),
                "bad_arguments")
        assert ok(await alice.call_tool("id", {}))["fingerprint"] == a_id["fingerprint"]
        async with Client(params(cfg["alice"], relay=cfg["dead_relay"]), mode="legacy",
                          read_timeout_seconds=70) as dead:
            e = err(await dead.call_tool("send", {"peer": "bob", "text": "lost?"}),
                    "relay_unreachable")
            errors["relay down"] = e
            e = err(await dead.call_tool("receive", {}), "relay_unreachable")
            assert ok(await dead.call_tool("contacts", {}))["contacts"][0]["name"] == "bob"
        ok(await alice.call_tool("sync", {}))
        report["errors"] = errors

        # ---- follow: beside `receive --follow`, N messages arrive exactly once overall
        n = cfg["messages"]
        env = dict(os.environ, PICKLE_SECRET=cfg["passphrase"])
        follow = subprocess.Popen(
            [cfg["retalk"], "receive", "--follow", "--json", "-q", "-s", cfg["alice"],
             "--relay", cfg["relay"]],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        try:
            await anyio.sleep(1.0)  # let it start listening
            sent_ids = set()
            mcp_got = []

            async def reader():
                with anyio.move_on_after(40):
                    while True:
                        r = ok(await alice.call_tool("wait", {"timeout": 2}))
                        mcp_got.extend(r["messages"])

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                for i in range(n):
                    s = ok(await bob.call_tool("send", {"peer": "alice", "text": f"both {i}"}))
                    sent_ids.add(s["id"])
                await anyio.sleep(6)
                tg.cancel_scope.cancel()
        finally:
            follow.terminate()
            out, _ = follow.communicate(timeout=20)
        follow_got = [json.loads(l) for l in out.splitlines() if l.strip()]
        ids = [m["id"] for m in mcp_got] + [m["id"] for m in follow_got]
        assert len(ids) == len(set(ids)), f"duplicates: {sorted(ids)}"
        assert set(ids) == sent_ids, f"lost: {sent_ids - set(ids)}"
        report["follow_split"] = {"mcp": len(mcp_got), "follow": len(follow_got)}

        # still serving after all of that
        ok(await bob.call_tool("contacts", {}))
    print(json.dumps(report))


anyio.run(main)
