"""Drives `retalk mcp` with the official Python MCP SDK (an independent client).

Usage: driver.py CONFIG.json   (CONFIG: {"retalk", "relay", "dead_relay", "alice", "bob",
                                          "carol", "passphrase", "messages"})

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
  groups     rooms through tools: alice makes one with bob and carol (carol's server runs with
             --no-save and has not saved alice, so the room is an invitation she accepts);
             posts both ways come back from wait labelled with group/group_id; history {group}
             shows both directions (nothing on carol's side); rename, remove, a partial send to a
             member never registered, a roster change and a leave are seen; bad group calls are
             tool errors with hints and the servers keep serving

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


async def collect(client, pred, seconds=20):
    """wait until pred(messages so far) holds; returns every message taken."""
    got = []
    with anyio.fail_after(seconds):
        while not pred(got):
            got += ok(await client.call_tool("wait", {"timeout": 5}))["messages"]
    return got


def texted(text):
    return lambda ms: any(m.get("text") == text for m in ms)


def one(ms, text):
    hits = [m for m in ms if m.get("text") == text]
    assert len(hits) == 1, (text, ms)
    return hits[0]


GROUP_TOOLS = ["groups", "group_create", "group_add", "group_remove", "group_rename",
               "group_leave", "group_join", "group_delete"]


async def groups_section(alice, bob, a_id, b_id):
    a_fp, b_fp = a_id["fingerprint"], b_id["fingerprint"]
    report["groups"] = {}
    async with Client(params(cfg["carol"], extra=["--no-save"]), read_timeout_seconds=70) as carol:
        cf = ok(await carol.call_tool("id", {}))["fingerprint"]
        ok(await alice.call_tool("add", {"fingerprint": cf, "name": "carol"}))
        g0 = ok(await alice.call_tool("groups", {}))
        assert g0 == {"groups": [], "left": [], "policy": "contacts"}, g0

        # create: a room with bob (by name) and carol (by name)
        made = ok(await alice.call_tool("group_create", {"name": "team",
                                                         "members": ["bob", "carol"]}))["group"]
        gid = made["group_id"]
        assert len(gid) == 32 and made["name"] == "team" and not made["invitation"], made
        assert sorted((m["fingerprint"], m["name"]) for m in made["members"]) == \
            sorted([(b_fp, "bob"), (cf, "carol")]), made
        err(await alice.call_tool("group_create", {"name": "team", "members": ["bob"]}),
            "bad_arguments")
        err(await alice.call_tool("group_create", {"name": "x", "members": []}), "bad_arguments")
        err(await alice.call_tool("group_create", {"name": "x", "members": ["nobody"]}),
            "unknown_peer")
        err(await alice.call_tool("group_create", {"name": "x", "members": "bob"}),
            "bad_arguments")
        err(await alice.call_tool("group_create", {"name": b_fp, "members": ["bob"]}),
            "bad_arguments")

        # alice posts; bob (who saved alice) has the room at once
        r = ok(await alice.call_tool("send", {"group": "team", "text": "hello team"}))
        assert (r["group"], r["group_id"], r["sent"], r["failed"], r["not_reached"],
                r["delivered_to_relay"], r["saved"]) == ("team", gid, 2, 0, [], True, True), r
        assert "to" not in r and len(r["id"]) == 32, r
        got = await collect(bob, texted("hello team"))
        p = one(got, "hello team")
        assert (p["group"], p["group_id"], p["from"], p["name"]) == ("team", gid, a_fp, "alice"), p
        bg = ok(await bob.call_tool("groups", {}))["groups"]
        assert [(g["group_id"], g["name"], g["invitation"]) for g in bg] == [(gid, "team", False)]
        assert sorted(m["fingerprint"] for m in bg[0]["members"]) == sorted([a_fp, cf]), bg

        # carol never saved alice: the room is an invitation (a record, then the post);
        # her inbox resource lists both, labelled, before anything is taken
        with anyio.fail_after(15):
            while True:
                pending = json.loads((await carol.read_resource(INBOX)).contents[0].text)
                if len(pending["messages"]) == 2:
                    break
                await anyio.sleep(0.1)
        assert sorted((m.get("kind", ""), m["group_id"], m["from"]) for m in pending["messages"]) \
            == [("", gid, a_fp), ("group_invitation", gid, a_fp)], pending
        got = await collect(carol, texted("hello team"))
        inv = [m for m in got if m.get("kind") == "group_invitation"]
        assert len(inv) == 1 and inv[0]["group_id"] == gid and "text" not in inv[0], got
        assert sorted(inv[0]["members"]) == sorted([a_fp, b_fp]), inv
        assert one(got, "hello team")["group_id"] == gid
        cg = ok(await carol.call_tool("groups", {}))["groups"]
        assert cg[0]["invitation"] and cg[0]["inviter"]["fingerprint"] == a_fp, cg
        e = err(await carol.call_tool("send", {"group": "team", "text": "may I?"}), "not_a_member")
        report["groups"]["post to an invitation"] = e
        j = ok(await carol.call_tool("group_join", {"group": "team"}))
        assert j["joined"] == "accepted" and j["group"]["invitation"] is False, j
        err(await carol.call_tool("group_join", {"group": "team"}), "bad_arguments")

        # bob answers the room; alice and carol get it labelled
        r = ok(await bob.call_tool("send", {"group": "team", "text": "reply from bob"}))
        assert r["sent"] == 2 and r["failed"] == 0, r
        p = one(await collect(alice, texted("reply from bob")), "reply from bob")
        assert (p["group"], p["group_id"], p["from"]) == ("team", gid, b_fp), p
        p = one(await collect(carol, texted("reply from bob")), "reply from bob")
        assert (p["group"], p["group_id"]) == ("team", gid), p
        r = ok(await carol.call_tool("send", {"group": "team", "text": "carol here"}))
        assert r["sent"] == 2 and r["saved"] is False, r
        assert one(await collect(alice, texted("carol here")), "carol here")["group_id"] == gid
        assert one(await collect(bob, texted("carol here")), "carol here")["group"] == "team"

        # history {group}: both directions, on both saving sides; nothing on carol's
        ha = ok(await alice.call_tool("history", {"group": "team"}))["messages"]
        assert [(e["direction"], e["text"]) for e in ha] == \
            [("out", "hello team"), ("in", "reply from bob"), ("in", "carol here")], ha
        assert all((e["group"], e["group_id"]) == ("team", gid) for e in ha), ha
        hb = ok(await bob.call_tool("history", {"group": gid}))["messages"]
        assert [(e["direction"], e["text"]) for e in hb] == \
            [("in", "hello team"), ("out", "reply from bob"), ("in", "carol here")], hb
        assert ok(await carol.call_tool("history", {"group": "team"}))["messages"] == []
        assert ok(await carol.call_tool("history", {}))["messages"] == []

        # rename: alice's label only
        rn = ok(await alice.call_tool("group_rename", {"group": "team", "name": "crew"}))
        assert (rn["old_name"], rn["group"]["name"], rn["group"]["group_id"]) == \
            ("team", "crew", gid), rn
        err(await alice.call_tool("group_rename", {"group": "crew", "name": b_fp}), "bad_arguments")
        ha = ok(await alice.call_tool("history", {"group": "crew"}))["messages"]
        assert len(ha) == 3 and all(e["group"] == "crew" for e in ha), ha
        err(await alice.call_tool("history", {"group": "team"}), "unknown_group")

        # remove: carol stops getting alice's posts, and bob's client drops her
        rm = ok(await alice.call_tool("group_remove", {"group": "crew", "members": ["carol"]}))
        assert rm["removed"] == 1 and [m["name"] for m in rm["group"]["members"]] == ["bob"], rm
        err(await alice.call_tool("group_remove", {"group": "crew", "members": ["carol"]}),
            "not_a_member")
        r = ok(await alice.call_tool("send", {"group": "crew", "text": "without carol"}))
        assert (r["group"], r["sent"], r["failed"]) == ("crew", 1, 0), r
        p = one(await collect(bob, texted("without carol")), "without carol")
        assert (p["group"], p["group_id"]) == ("team", gid), p  # bob's own label
        bg = ok(await bob.call_tool("groups", {"group": "team"}))["groups"]
        assert [m["fingerprint"] for m in bg[0]["members"]] == [a_fp], bg
        w = ok(await carol.call_tool("wait", {"timeout": 2}))
        assert w["timed_out"] and w["messages"] == [], w

        # a partial send: a member who never registered on the relay
        ghost = "0f" * 16
        ad = ok(await alice.call_tool("group_add", {"group": "crew", "members": [ghost]}))
        assert ad["added"] == 1 and len(ad["group"]["members"]) == 2, ad
        r = ok(await alice.call_tool("send", {"group": "crew", "text": "partial"}))
        assert (r["sent"], r["failed"], r["delivered_to_relay"]) == (1, 1, False), r
        nr = r["not_reached"]
        assert [(n["fingerprint"], n["kept"]) for n in nr] == [(ghost, False)] and nr[0]["reason"]
        assert "did not get it" in r["hint"] and "group_remove" in r["hint"], r
        report["groups"]["partial send"] = r
        got = await collect(bob, texted("partial"))
        added = [m for m in got if m.get("kind") == "group_members"]
        assert len(added) == 1 and added[0]["added"] == [ghost] and added[0]["group_id"] == gid, got
        assert added[0]["group"] == "team" and "text" not in added[0], added
        ok(await alice.call_tool("group_remove", {"group": "crew", "members": [ghost]}))

        # leave: bob leaves; alice is told; bob's room is refused until group_join
        lv = ok(await bob.call_tool("group_leave", {"group": "team"}))
        assert lv["group_id"] == gid and [m["fingerprint"] for m in lv["told"]] == [a_fp], lv
        # bob's roster still lists the ghost (alice's removal reaches bob with her next
        # post, and there is none): the one member the notice cannot reach
        assert [n["fingerprint"] for n in lv["not_told"]] == [ghost], lv
        got = await collect(alice, lambda ms: any(m.get("kind") == "group_leave" for m in ms))
        left = [m for m in got if m.get("kind") == "group_leave"][0]
        assert (left["from"], left["group_id"], left["group"]) == (b_fp, gid, "crew"), left
        assert "text" not in left, left
        assert ok(await alice.call_tool("groups", {"group": "crew"}))["groups"][0]["members"] == []
        bg = ok(await bob.call_tool("groups", {}))
        assert bg["groups"] == [] and bg["left"] == [{"group_id": gid, "name": "team"}], bg
        e = err(await bob.call_tool("send", {"group": "team", "text": "still here?"}),
                "not_a_member")
        report["groups"]["post to a room left"] = e
        hb = ok(await bob.call_tool("history", {"group": "team"}))["messages"]  # a room left
        assert [e["text"] for e in hb] == ["hello team", "reply from bob", "carol here",
                                           "without carol", "partial"], hb
        assert ok(await bob.call_tool("group_join", {"group": "team"}))["joined"] == "rejoined"
        e = err(await alice.call_tool("send", {"group": "crew", "text": "anyone?"}),
                "not_delivered")
        report["groups"]["empty room"] = e

        # delete: carol forgets the room locally
        d = ok(await carol.call_tool("group_delete", {"group": "team"}))
        assert d["deleted"]["group_id"] == gid, d
        assert ok(await carol.call_tool("groups", {}))["groups"] == []

        # bad group calls: tool errors with hints; every server keeps serving
        e = err(await alice.call_tool("send", {"peer": "bob", "group": "crew", "text": "x"}),
                "bad_arguments")
        report["groups"]["peer and group"] = e
        err(await alice.call_tool("send", {"text": "x"}), "bad_arguments")
        e = err(await alice.call_tool("send", {"group": "nosuch", "text": "x"}), "unknown_group")
        report["groups"]["unknown group"] = e
        err(await alice.call_tool("history", {"group": "nosuch"}), "unknown_group")
        err(await alice.call_tool("history", {"peer": "bob", "group": "crew"}), "bad_arguments")
        err(await alice.call_tool("groups", {"group": "nosuch"}), "unknown_group")
        err(await alice.call_tool("group_add", {"group": "nosuch", "members": ["bob"]}),
            "unknown_group")
        err(await alice.call_tool("group_add", {"group": "crew"}), "bad_arguments")
        err(await alice.call_tool("group_add", {"group": "crew", "members": ["nobody"]}),
            "unknown_peer")
        err(await alice.call_tool("group_leave", {"group": ""}), "bad_arguments")
        err(await alice.call_tool("group_join", {"group": "nosuch"}), "unknown_group")
        err(await alice.call_tool("group_delete", {"group": "nosuch"}), "unknown_group")
        for c in (alice, bob, carol):
            ok(await c.call_tool("id", {}))


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
                       "history", "sync"] + GROUP_TOOLS)
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
        schema = {t.name: t.input_schema for t in tools}
        assert schema["send"]["required"] == ["text"], schema["send"]
        assert {"peer", "group", "text"} <= set(schema["send"]["properties"]), schema["send"]
        assert {"peer", "group", "limit"} <= set(schema["history"]["properties"])
        assert sorted(schema["group_create"]["required"]) == ["members", "name"]
        assert schema["group_create"]["properties"]["members"]["type"] == "array"
        for name in ["group_add", "group_remove"]:
            assert sorted(schema[name]["required"]) == ["group", "members"], schema[name]
        assert sorted(schema["group_rename"]["required"]) == ["group", "name"]
        for name in ["group_leave", "group_join", "group_delete"]:
            assert schema[name]["required"] == ["group"], schema[name]
        assert not schema["groups"].get("required"), schema["groups"]
        out = {t.name: t.output_schema for t in tools}
        assert {"group", "group_id", "sent", "failed", "not_reached"} <= \
            set(out["send"]["properties"]), out["send"]
        msg = out["receive"]["$defs"]["MessageOut"]["properties"]
        assert {"group", "group_id", "kind"} <= set(msg), msg
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

        # ---- groups
        await groups_section(alice, bob, a_id, b_id)

        # still serving after all of that
        ok(await bob.call_tool("contacts", {}))
    print(json.dumps(report))


anyio.run(main)
