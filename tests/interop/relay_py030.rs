//! Item 2 of the interop issue: the real Python retalk 0.3.0 (library via
//! `tests/pyref/driver.py`, and its CLI) against our relay
//! (`retalk_server::Relay`), on loopback.

use retalk_testkit::pyref as harness;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use harness::{parallel, relay_pending, tempdir, PyRef, PyUser, RustRelay, Ver};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const V: Ver = Ver::V030;

struct World {
    tmp: tempfile::TempDir,
    relay: RustRelay,
}

fn world(name: &str) -> World {
    world_with(name, |_| {})
}

fn world_with(name: &str, tweak: impl FnOnce(&mut retalk_server::Config)) -> World {
    let tmp = tempdir(name);
    let mut config = retalk_server::Config {
        port: 0,
        db: tmp.path().join("server.db"),
        ..Default::default()
    };
    tweak(&mut config);
    let relay = RustRelay::start_with(config);
    World { tmp, relay }
}

impl World {
    fn user(&self, name: &str) -> PyUser {
        PyUser::new(V, self.tmp.path(), name, &self.relay.url)
    }
}

fn publish_all(py: &PyRef, users: &[&PyUser], n: u32) -> Vec<String> {
    parallel(users.to_vec(), |u| u.publish(py, n))
}

/// 0.3.0 `receive` results: `(id, from, name, text)`.
fn receive(py: &PyRef, u: &PyUser, peer: Option<&str>) -> Vec<(String, String, String, String)> {
    let extra = match peer {
        Some(p) => json!({ "peer": p }),
        None => json!({}),
    };
    let out = u.run(py, "receive", extra);
    out["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("from"), s("name"), s("text"))
        })
        .collect()
}

/// Send and receive both ways: envelope ids survive end to end, names are
/// shown as the reference shows them, acks empty both outboxes.
fn conversation_both_ways() {
    let py = harness::pyref();
    let w = world("py030-conv");
    let (alice, mut bob) = (w.user("alice"), w.user("bob"));
    let ids = publish_all(py, &[&alice, &bob], 10);
    let (a_id, b_id) = (&ids[0], &ids[1]);

    let sent = alice.run(
        py,
        "send",
        json!({"to": b_id, "text": "hello from 0.3.0 ✓"}),
    );
    let env_id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["outbox_id"], env_id.as_str());
    assert_eq!(
        receive(py, &bob, None),
        vec![(
            env_id,
            a_id.clone(),
            "~alice".into(),
            "hello from 0.3.0 ✓".into()
        )]
    );
    bob.names.insert(a_id.clone(), json!("Alice"));
    let r = bob.run(py, "send", json!({"to": a_id, "text": "back"}));
    let got = receive(py, &alice, None);
    assert_eq!(
        got,
        vec![(
            r["id"].as_str().unwrap().into(),
            b_id.clone(),
            "~bob".into(),
            "back".into()
        )]
    );
    assert!(alice.outbox(py).is_empty(), "Bob's ack arrived");
    alice.run(py, "send", json!({"to": b_id, "text": "again"}));
    let got = receive(py, &bob, None);
    assert_eq!((got[0].2.as_str(), got[0].3.as_str()), ("Alice", "again"));
    assert!(bob.outbox(py).is_empty(), "Alice's ack arrived");
    assert!(receive(py, &alice, None).is_empty());
    assert!(alice.outbox(py).is_empty());
    assert_eq!(relay_pending(&w.relay.db, a_id), 0);
    assert_eq!(relay_pending(&w.relay.db, b_id), 0);
}

/// `read_messages` with `peek` (nothing deleted) and with `peer` (only that
/// sender's mail, the rest stays), through the 0.3.0 library's signer, and
/// the library's own `receive(peer)`.
fn peek_and_per_peer_reads() {
    let py = harness::pyref();
    let w = world("py030-peek");
    let (alice, bob, carol) = (w.user("alice"), w.user("bob"), w.user("carol"));
    let ids = publish_all(py, &[&alice, &bob, &carol], 10);
    let (a_id, b_id, c_id) = (&ids[0], &ids[1], &ids[2]);
    parallel(vec![(&alice, "a1"), (&carol, "c1")], |(u, t)| {
        u.run(py, "send", json!({"to": b_id, "text": t}))
    });
    alice.run(py, "send", json!({"to": b_id, "text": "a2"}));

    let peek = bob.run(py, "read_peek", json!({}));
    let rows = peek["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{peek}");
    for r in rows {
        for k in ["message_id", "ts", "from", "mtype", "body"] {
            assert!(!r[k].is_null(), "row field {k}: {r}");
        }
    }
    assert_eq!(
        bob.run(py, "read_peek", json!({}))["messages"],
        peek["messages"]
    );
    let only_alice = bob.run(py, "read_peek", json!({ "peer": a_id }));
    let froms: Vec<&str> = only_alice["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["from"].as_str().unwrap())
        .collect();
    assert_eq!(froms, [a_id.as_str(), a_id.as_str()]);
    assert_eq!(relay_pending(&w.relay.db, b_id), 3);

    // consuming, for one sender only
    let got = receive(py, &bob, Some(c_id));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].1.as_str(), got[0].3.as_str()),
        (c_id.as_str(), "c1")
    );
    assert_eq!(relay_pending(&w.relay.db, b_id), 2, "Alice's mail stays");
    let raw = bob.run(py, "read_peer", json!({ "peer": a_id, "peek": true }));
    assert_eq!(raw["messages"].as_array().unwrap().len(), 2);
    let texts: Vec<String> = receive(py, &bob, Some(a_id))
        .into_iter()
        .map(|m| m.3)
        .collect();
    assert_eq!(texts, ["a1", "a2"]);
    assert_eq!(relay_pending(&w.relay.db, b_id), 0);
    // a raw consuming per-peer read of an empty mailbox
    let raw = bob.run(py, "read_peer", json!({ "peer": c_id }));
    assert_eq!(raw["messages"], json!([]));
}

/// `nack` and the refused-body answer: Bob (blocking Alice) refuses her
/// message with a signed negative ack; our relay refuses the re-sent copy
/// and hands Alice Bob's signature, which the 0.3.0 library verifies
/// before dropping the outbox entry and its sessions with Bob. A raw
/// re-send shows the answer's exact shape.
fn nack_and_refused_body() {
    let py = harness::pyref();
    let w = world("py030-nack");
    let (alice, bob) = (w.user("alice"), w.user("bob"));
    let ids = publish_all(py, &[&alice, &bob], 10);
    let (a_id, b_id) = (&ids[0], &ids[1]);
    let bob_keys = py.drive(V, "identity_key", &bob.args(json!({})));

    alice.run(
        py,
        "send",
        json!({"to": b_id, "text": "you will refuse this"}),
    );
    let body = py.drive(V, "outbox", &json!({"store": alice.store, "bodies": true}))["outbox"][0]
        ["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    assert_eq!(
        py.drive(V, "sessions", &json!({"store": alice.store}))["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Bob blocks Alice: his receive drops her mail and nacks its hash.
    let blocking = bob.args(json!({"user_kwargs": {"blocked": [a_id]}}));
    let got = py.drive(V, "receive", &blocking);
    assert_eq!(got["messages"], json!([]));
    assert_eq!(relay_pending(&w.relay.db, b_id), 0);

    // A raw re-send of that body: refused, with Bob's signature as proof.
    let raw = alice.run(
        py,
        "raw_call",
        json!({"tool": "send_message", "args": {"to": b_id, "mtype": 0, "body": body}}),
    );
    let ans = &raw["result"];
    assert_eq!(ans["refused"], true, "{raw}");
    assert_eq!(ans["hash"], hash.as_str());
    let sig = STANDARD_NO_PAD
        .decode(ans["sig"].as_str().unwrap().trim_end_matches('='))
        .unwrap();
    let key = STANDARD_NO_PAD
        .decode(bob_keys["signing_key"].as_str().unwrap())
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap();
    key.verify_strict(
        format!("nack|{b_id}|{hash}").as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig.try_into().unwrap()),
    )
    .expect("the refusal carries Bob's signature");
    assert_eq!(
        relay_pending(&w.relay.db, b_id),
        0,
        "a refused body is not stored"
    );

    // The library's flush: verified, dropped, sessions reset, not counted.
    assert_eq!(alice.run(py, "flush_outbox", json!({}))["resent"], 0);
    assert!(alice.outbox(py).is_empty());
    assert_eq!(
        py.drive(V, "sessions", &json!({"store": alice.store}))["sessions"],
        json!([])
    );
    // The next message starts a new session (pre-key) and, once Bob stops
    // blocking, arrives.
    alice.run(py, "send", json!({"to": b_id, "text": "fresh start"}));
    assert_eq!(alice.outbox(py)[0]["mtype"], 0);
    let got = receive(py, &bob, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].3, "fresh start");

    // `nack` directly: a well-formed hash is recorded, anything else is
    // refused with our relay's reason, which the library reports.
    let ok = bob.run(py, "nack", json!({ "hash": "ab".repeat(32) }));
    assert_eq!(ok["result"], json!({"ok": true}));
    let err = bob.run_err(py, "nack", json!({ "hash": "not-a-hash" }));
    assert!(err.starts_with("server error from nack: "), "{err}");
    assert!(err.contains("hash"), "{err}");
}

/// `GET /info` answers the public policy the 0.3.0 client reads: its
/// `group_cap()` returns our relay's configured `max_group_size`.
fn info_and_group_cap() {
    let py = harness::pyref();
    let w = world_with("py030-info", |c| c.max_group_size = 7);
    let out = py.drive(V, "info", &json!({ "server": w.relay.url }));
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["json"]["max_group_size"], 7, "{out}");
    let alice = w.user("alice");
    assert_eq!(alice.run(py, "group_cap", json!({}))["group_cap"], 7);
    // a client configured with an API key (a Bearer header, for 0.3.0
    // relays with --require-api-key) works: our relay ignores the header
    let counts = alice.run(py, "count_keys", json!({"api_key": "some-relay-key"}));
    assert_eq!(counts, json!({"unclaimed": 0, "has_fallback": false}));
    // also under a path prefix (a relay behind a proxy path), as the 0.3.0
    // relay does
    let out = py.drive(
        V,
        "info",
        &json!({ "server": format!("{}/relay", w.relay.url) }),
    );
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["json"]["max_group_size"], 7, "{out}");
}

/// The 0.3.0 CLI end to end: init (publishes at once), add, send,
/// receive NDJSON with saved names, both ways.
fn cli_conversation() {
    let py = harness::pyref();
    let w = world("py030-cli");
    let home = w.tmp.path().join("home");
    let url = w.relay.url.clone();
    let dir = |who: &str| w.tmp.path().join(format!("id-{who}"));
    let cli = |who: &str, args: &[&str]| {
        let d = dir(who);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--dir", d.to_str().unwrap()]);
        py.cli_ok(
            V,
            &home,
            &all,
            &[
                ("RETALK_PASSPHRASE", &format!("{who}-secret")),
                ("RETALK_RELAY", &url),
            ],
        )
    };
    let ids = parallel(vec!["alice", "bob"], |who| {
        cli(who, &["init", "--display-name", who]).trim().to_owned()
    });
    let (a_id, b_id) = (&ids[0], &ids[1]);
    assert_eq!(a_id.len(), 32, "{a_id}");
    parallel(
        vec![("alice", "bob", b_id), ("bob", "alice", a_id)],
        |(who, peer, id)| cli(who, &["add", id, "--peer", peer]),
    );
    let sent: Value = serde_json::from_str(
        cli("alice", &["send", "--peer", "bob", "hi from the 0.3.0 CLI"]).trim(),
    )
    .unwrap();
    assert_eq!(sent["to"], b_id.as_str());
    let got: Value =
        serde_json::from_str(cli("bob", &["receive", "--peer", "alice"]).trim()).unwrap();
    assert_eq!(got["id"], sent["id"]);
    assert_eq!(got["from"], a_id.as_str());
    assert_eq!(got["name"], "alice");
    assert_eq!(got["text"], "hi from the 0.3.0 CLI");
    cli("bob", &["send", "--peer", "alice", "and back"]);
    let got: Value = serde_json::from_str(cli("alice", &["receive", "--all"]).trim()).unwrap();
    assert_eq!(
        (&got["from"], &got["name"], &got["text"]),
        (&json!(b_id), &json!("bob"), &json!("and back"))
    );
    assert!(cli("bob", &["receive", "--all"]).trim().is_empty());
    for who in ["alice", "bob"] {
        let o = py.drive(V, "outbox", &json!({"dir": dir(who)}));
        assert_eq!(o["outbox"], json!([]), "{who}");
    }
}

crate::cases! {
    python: [conversation_both_ways, peek_and_per_peer_reads, nack_and_refused_body, info_and_group_cap, cli_conversation],
    plain: [],
}
