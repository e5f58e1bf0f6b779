//! Item 1 of the interop issue: the real Python retalk 0.0.1 (library via
//! `tests/pyref/driver.py`, and its CLI) against our relay
//! (`retalk_server::Relay`), on loopback.

use retalk_testkit::pyref as harness;

use harness::{parallel, relay_pending, tempdir, PyRef, PyUser, RustRelay, Ver};
use serde_json::{json, Value};

const V: Ver = Ver::V001;

struct World {
    _tmp: tempfile::TempDir,
    relay: RustRelay,
}

fn world(name: &str) -> World {
    let tmp = tempdir(name);
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    World { _tmp: tmp, relay }
}

impl World {
    fn user(&self, name: &str) -> PyUser {
        PyUser::new(V, self._tmp.path(), name, &self.relay.url)
    }
}

/// Publishes each user (in parallel) and returns their ids in order.
fn publish_all(py: &PyRef, users: &[&PyUser], n: u32) -> Vec<String> {
    parallel(users.to_vec(), |u| u.publish(py, n))
}

fn count_keys(py: &PyRef, u: &PyUser) -> (u64, bool) {
    let c = u.run(py, "count_keys", Value::Null);
    (
        c["unclaimed"].as_u64().unwrap(),
        c["has_fallback"].as_bool().unwrap(),
    )
}

/// A full conversation both ways: pre-key messages, replies, names as the
/// reference shows them (`~self-chosen` or the local name), acks that empty
/// both outboxes, and a relay that keeps nothing once everything is read.
fn conversation_both_ways() {
    let py = harness::pyref();
    let w = world("py001-conv");
    let alice = w.user("alice");
    let mut bob = w.user("bob");
    let ids = publish_all(py, &[&alice, &bob], 20);
    let (a_id, b_id) = (&ids[0], &ids[1]);

    let sent = alice.run(py, "send", json!({"to": b_id, "text": "hello bob ☕"}));
    // 0.0.1 returns the relay's answer to send_message
    assert!(sent["result"]["message_id"].is_u64(), "{sent}");
    assert!(sent["result"]["ts"].is_number(), "{sent}");
    let first_id = sent["outbox_id"].as_str().unwrap().to_owned();
    assert_eq!(alice.outbox(py)[0]["mtype"], 0, "first message is pre-key");

    assert_eq!(
        bob.receive(py),
        vec![(a_id.clone(), "~alice".into(), "hello bob ☕".into())]
    );
    // Bob saved Alice under a local name: that is what he sees from now on.
    bob.names.insert(a_id.clone(), json!("al"));
    bob.run(py, "send", json!({"to": a_id, "text": "hi alice"}));
    bob.run(py, "send", json!({"to": a_id, "text": "second"}));
    assert_eq!(relay_pending(&w.relay.db, a_id), 3, "ack + two messages");

    let got = alice.receive(py);
    assert_eq!(
        got,
        vec![
            (b_id.clone(), "~bob".into(), "hi alice".into()),
            (b_id.clone(), "~bob".into(), "second".into()),
        ]
    );
    assert!(
        alice.outbox(py).is_empty(),
        "Bob's ack of {first_id} emptied Alice's outbox"
    );
    assert_eq!(bob.outbox(py).len(), 2);

    alice.run(py, "send", json!({"to": b_id, "text": "bye"}));
    assert_eq!(
        bob.receive(py),
        vec![(a_id.clone(), "al".into(), "bye".into())]
    );
    assert!(
        bob.outbox(py).is_empty(),
        "Alice's acks emptied Bob's outbox"
    );
    assert_eq!(alice.outbox(py).len(), 1);
    assert!(alice.receive(py).is_empty(), "only Bob's ack was waiting");
    assert!(alice.outbox(py).is_empty());
    assert_eq!(relay_pending(&w.relay.db, a_id), 0);
    assert_eq!(relay_pending(&w.relay.db, b_id), 0);
}

/// Sessions started on the fallback key: a recipient with no one-time keys
/// left still gets messages (claim_key hands out the fallback key), and a
/// message made with the fallback key still decrypts after `maintain`
/// rotated it. `maintain` replenishes one-time keys and reports what it did.
fn fallback_key_sessions_and_maintain() {
    let py = harness::pyref();
    let w = world("py001-fallback");
    let (alice, bob, carol) = (w.user("alice"), w.user("bob"), w.user("carol"));
    let ids = publish_all(py, &[&alice, &bob, &carol], 0);
    let (a_id, b_id, c_id) = (&ids[0], &ids[1], &ids[2]);
    assert_eq!(count_keys(py, &bob), (0, true), "fallback key only");

    // Alice and Carol both start sessions on Bob's fallback key.
    parallel(
        vec![(&alice, "from alice"), (&carol, "from carol")],
        |(u, t)| u.run(py, "send", json!({"to": b_id, "text": t})),
    );
    // Bob rotates his fallback key before reading: the messages made with
    // the previous one still decrypt.
    let m = bob.run(
        py,
        "maintain",
        json!({"kwargs": {"min_otks": 5, "batch": 7, "fallback_max_age": 0.0}}),
    );
    assert_eq!(
        m,
        json!({"unclaimed": 0, "replenished": true, "fallback_rotated": true, "resent": 0})
    );
    assert_eq!(count_keys(py, &bob), (7, true));
    let mut got = bob.receive(py);
    got.sort();
    let mut want = vec![
        (a_id.clone(), "~alice".to_owned(), "from alice".to_owned()),
        (c_id.clone(), "~carol".to_owned(), "from carol".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);

    // Nothing to do now: enough keys, fresh fallback key.
    let m = bob.run(py, "maintain", json!({"kwargs": {"min_otks": 5}}));
    assert_eq!(m["replenished"], false, "{m}");
    assert_eq!(m["fallback_rotated"], false, "{m}");

    // A new sender now gets one of the replenished one-time keys.
    let dave = w.user("dave");
    let d_id = dave.publish(py, 1);
    dave.run(py, "send", json!({"to": b_id, "text": "from dave"}));
    assert_eq!(count_keys(py, &bob), (6, true));
    assert_eq!(
        bob.receive(py),
        vec![(d_id.clone(), "~dave".into(), "from dave".into())]
    );
    // Bob's replies travel on the sessions the others started.
    bob.run(py, "send", json!({"to": c_id, "text": "hi carol"}));
    assert_eq!(
        carol.receive(py),
        vec![(b_id.clone(), "~bob".into(), "hi carol".into())]
    );
    // `maintain` re-sends what is still unacknowledged.
    let keep = json!({"kwargs": {"resend_after": 0.0, "min_otks": 0}});
    assert!(bob.receive(py).is_empty(), "only Carol's ack");
    let m = bob.run(py, "maintain", keep.clone());
    assert_eq!(m["resent"], 0, "Carol acked: {m}");
    bob.run(py, "send", json!({"to": a_id, "text": "hi alice"}));
    let m = bob.run(py, "maintain", keep);
    assert_eq!(
        m,
        json!({"unclaimed": 6, "replenished": false, "fallback_rotated": false, "resent": 1})
    );
    assert_eq!(
        alice.receive(py),
        vec![(b_id.clone(), "~bob".into(), "hi alice".into())],
        "the re-sent copy is dropped as a duplicate"
    );
}

/// Outbox re-send and duplicate drop: a copy re-sent by `flush_outbox`
/// after the recipient decrypted the original is not surfaced again, only
/// re-acknowledged, and the sender's outbox empties.
fn outbox_resend_and_duplicate_drop() {
    let py = harness::pyref();
    let w = world("py001-dup");
    let (alice, bob) = (w.user("alice"), w.user("bob"));
    let ids = publish_all(py, &[&alice, &bob], 5);
    let (a_id, b_id) = (&ids[0], &ids[1]);

    alice.run(py, "send", json!({"to": b_id, "text": "once"}));
    alice.run(py, "send", json!({"to": b_id, "text": "twice"}));
    // re-sent before Bob read anything: he gets each message once
    assert_eq!(alice.run(py, "flush_outbox", json!({}))["resent"], 2);
    assert_eq!(relay_pending(&w.relay.db, b_id), 4);
    let texts: Vec<String> = bob.receive(py).into_iter().map(|m| m.2).collect();
    assert_eq!(texts, ["once", "twice"]);
    // and re-sent after he read them
    assert_eq!(alice.run(py, "flush_outbox", json!({}))["resent"], 2);
    assert!(bob.receive(py).is_empty(), "duplicates are dropped");
    // Bob acked each message (once per copy); Alice's outbox is empty.
    assert_eq!(relay_pending(&w.relay.db, a_id), 6);
    assert!(alice.receive(py).is_empty());
    assert!(alice.outbox(py).is_empty());
    assert_eq!(alice.run(py, "flush_outbox", json!({}))["resent"], 0);
}

/// Replayed, stale and wrong-audience requests are refused, and the
/// Python client reports our relay's reason word for word.
fn refusals_carry_the_relays_reason() {
    let py = harness::pyref();
    let w = world("py001-refuse");
    let alice = w.user("alice");
    alice.publish(py, 1);
    let out = parallel(
        vec![
            ("replay", json!({})),
            ("stale", json!({"offset": -1000})),
            ("stale", json!({"offset": 1000})),
            ("stale", json!({"offset": 100})),
            ("wrong_audience", json!({})),
            (
                "send",
                json!({"to": "0123456789abcdef0123456789abcdef", "text": "x"}),
            ),
        ],
        |(cmd, extra)| py.driver(V, cmd, &alice.args(extra)),
    );
    let replay = &out[0].json;
    assert_eq!(replay["first"]["ok"], true, "{replay}");
    assert_eq!(replay["first"]["result"]["unclaimed"], 1, "{replay}");
    assert_eq!(replay["second"]["ok"], false, "{replay}");
    assert_eq!(
        replay["second"]["error"],
        "server error from count_keys: replay detected: nonce already used"
    );
    for stale in [&out[1].json, &out[2].json] {
        assert_eq!(stale["ok"], false, "{stale}");
        assert_eq!(
            stale["error"],
            "server error from count_keys: stale or future timestamp (check the clock)"
        );
    }
    assert_eq!(
        out[3].json["ok"], true,
        "100 s of skew is inside the window"
    );
    let wrong = &out[4].json;
    assert_eq!(wrong["ok"], false, "{wrong}");
    assert_eq!(
        wrong["error"],
        "server error from count_keys: bad signature (wrong key, audience, or argument canonicalization)"
    );
    // an unknown peer: the library raises with our relay's reason
    assert_eq!(out[5].code, 1, "{:?}", out[5]);
    let err = out[5].json["error"].as_str().unwrap();
    assert!(
        err.starts_with("server error from claim_key: ") && err.len() > 30,
        "{err}"
    );
}

/// The 0.0.1 CLI end to end: init, add, send (which publishes first),
/// receive --json with saved names, both ways.
fn cli_conversation() {
    let py = harness::pyref();
    let w = world("py001-cli");
    let home = w._tmp.path().join("home");
    let dir = |who: &str| w._tmp.path().join(format!("id-{who}"));
    let url = w.relay.url.as_str();
    let init = |who: &str| {
        let d = dir(who);
        let out = py.cli_ok(
            V,
            &home,
            &["init", d.to_str().unwrap(), "--name", who, "--server", url],
            &[("PICKLE_SECRET", &format!("{who}-secret"))],
        );
        out.trim().to_owned()
    };
    let ids = parallel(vec!["alice", "bob"], init);
    let (a_id, b_id) = (&ids[0], &ids[1]);
    assert_eq!(a_id.len(), 32);
    let cli = |who: &str, args: &[&str]| {
        let d = dir(who);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-s", d.to_str().unwrap()]);
        py.cli_ok(
            V,
            &home,
            &all,
            &[("PICKLE_SECRET", &format!("{who}-secret"))],
        )
    };
    parallel(
        vec![("alice", "bob", b_id), ("bob", "alice", a_id)],
        |(who, peer, id)| cli(who, &["add", peer, id]),
    );
    // Bob must be on the relay before Alice can claim his keys.
    assert!(cli("bob", &["receive", "--json"]).trim().is_empty());
    cli("alice", &["send", "bob", "hello from the 0.0.1 CLI"]);
    let line = cli("bob", &["receive", "--json"]);
    let got: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(
        got,
        json!({"from": a_id, "name": "alice", "text": "hello from the 0.0.1 CLI"})
    );
    cli("bob", &["send", "alice", "and back"]);
    let line = cli("alice", &["receive", "--json"]);
    let got: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(
        got,
        json!({"from": b_id, "name": "bob", "text": "and back"})
    );
    // the acks emptied both outboxes
    assert!(cli("bob", &["receive", "--json"]).trim().is_empty());
    for who in ["alice", "bob"] {
        let o = py.drive(V, "outbox", &json!({"dir": dir(who)}));
        assert_eq!(o["outbox"], json!([]), "{who}");
    }
}

crate::cases! {
    python: [conversation_both_ways, fallback_key_sessions_and_maintain, outbox_resend_and_duplicate_drop, refusals_carry_the_relays_reason, cli_conversation],
    plain: [],
}
