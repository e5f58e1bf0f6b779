//! Rooms (groups) in `retalk show`: `show --group NAME` in the terminal and
//! rooms in the web view's sidebar and threads, each sender named, against
//! a real relay with posts saved by `send --group --save` and
//! `receive --save` in other processes.

mod showkit;

use showkit::*;

/// alice, bob and carol in a room `team` made by alice; each posts once,
/// everyone keeps everything. Returns the room id.
fn room(p: &Pair) -> (String, String) {
    let url = p.relay.url();
    let r = p.run(
        &[
            "init",
            "-u",
            "carol",
            "--relay",
            &url,
            "--display-name",
            "carol",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let carol = r.stdout.trim().to_owned();
    for (who, name, id) in [
        ("alice", "carol", &carol),
        ("bob", "carol", &carol),
        ("carol", "alice", &p.alice),
        ("carol", "bob", &p.bob),
    ] {
        p.run(&["add", id, "--peer", name, "-u", who], &[]).ok();
    }
    let made = p
        .run(
            &[
                "group",
                "create",
                "team",
                "--members",
                "bob,carol",
                "-u",
                "alice",
            ],
            &[],
        )
        .ok();
    let made: serde_json::Value = serde_json::from_str(made.trim()).unwrap();
    let gid = made["group_id"].as_str().unwrap().to_owned();
    let recv = |u: &str| {
        p.run(&["receive", "--all", "--save", "--quiet", "-u", u], &[])
            .ok()
    };
    for (who, text) in [
        ("alice", "room hello"),
        ("bob", "bob here"),
        ("carol", "carol here"),
    ] {
        p.run(&["send", "--group", "team", text, "--save", "-u", who], &[])
            .ok();
        for u in ["alice", "bob", "carol"] {
            if u != who {
                recv(u);
            }
        }
    }
    (gid, carol)
}

#[test]
fn terminal_shows_a_room_with_every_sender_named() {
    let p = pair();
    p.talk("alice", "bob", "direct hello");
    let (gid, _carol) = room(&p);
    for who in ["alice", "bob"] {
        let out = p.run(&["show", who, "--group", "team"], &[]).ok();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("# 💬 {who} ⇄ team ({gid})"), "{out}");
        let body: Vec<&str> = lines[2..]
            .iter()
            .map(|l| l.split_once("] ").unwrap().1)
            .collect();
        // yours marked 🟢 after the name; each other sender its own
        // marker before it, in order of appearance (0.3.x's look)
        let want = if who == "alice" {
            [
                "alice 🟢: room hello",
                "🔵 bob: bob here",
                "🟣 carol: carol here",
            ]
        } else {
            [
                "🔵 alice: room hello",
                "bob 🟢: bob here",
                "🟣 carol: carol here",
            ]
        };
        assert_eq!(body, want, "{who}: {out}");
    }
    // the two-party view does not mix the room in
    let out = p.run(&["show", "alice", "bob"], &[]).ok();
    assert!(
        out.contains("direct hello") && !out.contains("bob here"),
        "{out}"
    );
    // history --group lists the same posts, tagged
    let h = p
        .run(&["history", "--group", "team", "-u", "alice"], &[])
        .ok();
    let rows: Vec<serde_json::Value> = h
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{h}");
    assert!(rows
        .iter()
        .all(|r| r["group_id"] == gid.as_str() && r["group"] == "team"));
    // an unknown room is refused clearly
    let r = p.run(&["show", "alice", "--group", "nope"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no group 'nope'"), "{}", r.stderr);
}

#[test]
fn web_view_lists_rooms_and_names_each_sender() {
    let p = pair();
    p.talk("alice", "bob", "direct hello");
    let (gid, carol) = room(&p);
    let web = Web::start(&p, "alice");
    let c = web.json("/api/conversations");
    let convs = c["conversations"].as_array().unwrap();
    let r = convs
        .iter()
        .find(|c| c["kind"] == "room")
        .unwrap_or_else(|| panic!("no room in {c}"));
    assert_eq!(
        (
            &r["id"],
            &r["name"],
            &r["count"],
            &r["members"],
            &r["last_name"]
        ),
        (
            &serde_json::json!(gid),
            &serde_json::json!("team"),
            &serde_json::json!(3),
            &serde_json::json!(2),
            &serde_json::json!("carol")
        ),
        "{r}"
    );
    let direct = convs
        .iter()
        .find(|c| c["fingerprint"] == p.bob.as_str())
        .unwrap();
    assert_eq!(
        direct["count"], 1,
        "the room's posts are not bob's: {direct}"
    );
    let m = web.json(&format!("/api/messages?peer={gid}&after=0"));
    let named: Vec<(&str, &str, &str)> = m["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["from"].as_str().unwrap(),
                m["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("alice", p.alice.as_str(), "room"),
            ("bob", p.bob.as_str(), "room"),
            ("carol", carol.as_str(), "room"),
        ]
    );
    // a post saved by another process is pushed, in the room
    let mut events = Events::open(&web, "");
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.run(
        &[
            "send",
            "--group",
            "team",
            "pushed to the room",
            "--save",
            "-u",
            "alice",
        ],
        &[],
    )
    .ok();
    let ev = events.next(SLOW).expect("an event");
    assert_eq!(
        (
            ev["text"].as_str(),
            ev["peer"].as_str(),
            ev["kind"].as_str()
        ),
        (Some("pushed to the room"), Some(gid.as_str()), Some("room"))
    );
}
