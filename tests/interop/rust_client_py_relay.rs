//! Item 3 of the interop issue, library part: our client library
//! (`retalk::User`) against the real Python relays, 0.0.1 and 0.3.0, on
//! loopback: the same conversation as against our relay (keys, pre-key and
//! normal messages both ways, names, acknowledgements, re-sends and
//! duplicates, upkeep), and with a Python user of the relay's own
//! generation on the other end; and what a client must do differently
//! against a relay that has never seen it and cannot wait.

use retalk_testkit::pyref as harness;

use std::time::Duration;

use harness::{relay_pending, runtime, rust_user, tempdir, triples, PyRelay, PyUser, Ver};
use retalk::{MaintainOptions, UserId};
use serde_json::json;

fn rust_pair(ver: Ver) {
    let py = harness::pyref();
    let tmp = tempdir(&format!("rust-at-py{}", ver.as_str()));
    let relay = PyRelay::start(py, ver, &tmp.path().join("relay.db"), None, &[]);
    let rt = runtime();
    let alice = rust_user(&rt, tmp.path(), "alice", &relay.url, 10);
    let bob = rust_user(&rt, tmp.path(), "bob", &relay.url, 10);
    let (a, b) = (alice.user_id(), bob.user_id());

    // pre-key message, then replies both ways
    let id = rt
        .block_on(alice.send(&b, "hello through the Python relay ✉"))
        .unwrap();
    let got = rt.block_on(bob.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(
            a.to_string(),
            "~alice".into(),
            "hello through the Python relay ✉".into()
        )]
    );
    assert_eq!(got[0].id, id);
    bob.add_peer("al", &a, Some(&alice.identity_key())).unwrap();
    rt.block_on(bob.send(&a, "reply 1")).unwrap();
    rt.block_on(bob.send(&a, "reply 2")).unwrap();
    let got = rt.block_on(alice.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![
            (b.to_string(), "~bob".into(), "reply 1".into()),
            (b.to_string(), "~bob".into(), "reply 2".into()),
        ]
    );
    assert_eq!(alice.outbox_len().unwrap(), 0, "Bob's ack arrived");
    rt.block_on(alice.send(&b, "third")).unwrap();
    let got = rt.block_on(bob.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(a.to_string(), "al".into(), "third".into())]
    );
    assert_eq!(bob.outbox_len().unwrap(), 0, "Alice's acks arrived");

    // re-send before the ack is read: the copy is a duplicate, dropped
    assert_eq!(alice.outbox_len().unwrap(), 1);
    assert_eq!(rt.block_on(alice.flush_outbox(Duration::ZERO)).unwrap(), 1);
    assert!(rt.block_on(bob.receive()).unwrap().is_empty());
    assert!(rt.block_on(alice.receive()).unwrap().is_empty());
    assert_eq!(alice.outbox_len().unwrap(), 0);
    assert_eq!(relay_pending(&relay.db, a.as_str()), 0);
    assert_eq!(relay_pending(&relay.db, b.as_str()), 0);

    // Python relays do not know `wait` (0.0.1 has no GET /info at all: 501):
    // a waiting receive still works, as a plain read
    assert!(!rt.block_on(alice.relay_supports_wait()).unwrap());
    let inbox = rt
        .block_on(alice.receive_inbox(Some(Duration::from_millis(300))))
        .unwrap();
    assert!(inbox.is_empty(), "{inbox:?}");

    // upkeep against the Python relay
    let report = rt
        .block_on(alice.maintain(MaintainOptions {
            min_otks: 50,
            batch: 40,
            fallback_max_age: Duration::ZERO,
            resend_after: Duration::ZERO,
            ..Default::default()
        }))
        .unwrap();
    assert!(report.replenished && report.fallback_rotated, "{report:?}");
    assert_eq!(
        report.unclaimed, 10,
        "Alice started every session: none claimed"
    );
    // a new sender starts a session on the rotated keys
    let carol = rust_user(&rt, tmp.path(), "carol", &relay.url, 1);
    rt.block_on(carol.send(&a, "from carol")).unwrap();
    let got = rt.block_on(alice.receive()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "from carol");
}

/// Ours and theirs on their relay: a Rust user and a Python user of the
/// relay's generation, each starting a session (two pairs).
fn mixed_pair(ver: Ver) {
    let py = harness::pyref();
    let tmp = tempdir(&format!("mixed-at-py{}", ver.as_str()));
    let relay = PyRelay::start(py, ver, &tmp.path().join("relay.db"), None, &[]);
    let rt = runtime();
    let rust1 = rust_user(&rt, tmp.path(), "rust1", &relay.url, 5);
    let rust2 = rust_user(&rt, tmp.path(), "rust2", &relay.url, 5);
    let py1 = PyUser::new(ver, tmp.path(), "py1", &relay.url);
    let py2 = PyUser::new(ver, tmp.path(), "py2", &relay.url);
    let ids = harness::parallel(vec![&py1, &py2], |u| u.publish(py, 5));
    let (p1, p2) = (ids[0].clone(), ids[1].clone());

    // Python starts with rust1
    py1.run(
        py,
        "send",
        json!({"to": rust1.user_id(), "text": "py first"}),
    );
    let got = rt.block_on(rust1.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(p1.clone(), "~py1".into(), "py first".into())]
    );
    rt.block_on(rust1.send(&p1.parse_id(), "rust answers"))
        .unwrap();
    assert_eq!(
        py1.receive(py),
        vec![(
            rust1.user_id().to_string(),
            "~rust1".into(),
            "rust answers".into()
        )]
    );
    assert!(py1.outbox(py).is_empty());
    assert!(rt.block_on(rust1.receive()).unwrap().is_empty());
    assert_eq!(rust1.outbox_len().unwrap(), 0);

    // rust2 starts with Python
    rt.block_on(rust2.send(&p2.parse_id(), "rust first"))
        .unwrap();
    assert_eq!(
        py2.receive(py),
        vec![(
            rust2.user_id().to_string(),
            "~rust2".into(),
            "rust first".into()
        )]
    );
    py2.run(
        py,
        "send",
        json!({"to": rust2.user_id(), "text": "py answers"}),
    );
    let got = rt.block_on(rust2.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(p2.clone(), "~py2".into(), "py answers".into())]
    );
    assert_eq!(rust2.outbox_len().unwrap(), 0);
    assert!(py2.receive(py).is_empty());
    assert!(py2.outbox(py).is_empty());
}

/// A fresh Rust user (nothing published) against a reference relay and a
/// Python user of its generation: the first command publishes her, waiting
/// is never sent to a relay that cannot wait, unusual text survives both
/// ways, and acknowledgements clear both outboxes.
fn fresh_rust_user_meets_python(ver: Ver) {
    let py = harness::pyref();
    let tmp = tempdir(&format!("fresh-at-py{}", ver.as_str()));
    let relay = PyRelay::start(py, ver, &tmp.path().join("relay.db"), None, &[]);
    let rt = runtime();
    let bob = PyUser::new(ver, tmp.path(), "bob", &relay.url);
    let bob_id = UserId::parse(&bob.publish(py, 20), "bob").unwrap();
    let alice = rt
        .block_on(retalk::User::create_with(
            &tmp.path().join("alice"),
            "alice-secret",
            "alice",
            Some(&relay.url),
            harness::cheap(),
        ))
        .unwrap();
    // A relay that never saw Alice: the first command publishes her.
    assert!(rt.block_on(alice.ensure_published()).unwrap());
    assert!(!rt.block_on(alice.ensure_published()).unwrap());
    // Reference relays do not wait; nothing relay-specific is sent to them.
    assert!(!rt.block_on(alice.relay_supports_wait()).unwrap());

    let text = "from rust: ünïcödé \u{1F980} \"q\" \n";
    rt.block_on(alice.send(&bob_id, text)).unwrap();
    assert_eq!(
        bob.receive(py),
        [(
            alice.user_id().to_string(),
            "~alice".to_owned(),
            text.to_owned()
        )]
    );

    bob.run(
        py,
        "send",
        json!({"to": alice.user_id().as_str(), "text": "from python"}),
    );
    // Waiting is asked for but never sent to a relay that cannot wait.
    let inbox = rt
        .block_on(alice.receive_inbox(Some(Duration::from_secs(2))))
        .unwrap();
    assert!(inbox.problems.is_empty(), "{:?}", inbox.problems);
    assert_eq!(inbox.messages.len(), 1);
    assert_eq!(inbox.messages[0].text, "from python");
    assert_eq!(inbox.messages[0].name, "~bob");
    assert_eq!(inbox.messages[0].from, bob_id);
    // Bob's acknowledgement of Alice's message arrived with it.
    assert_eq!(alice.outbox_len().unwrap(), 0);
    // Alice's acknowledgement reaches Bob's outbox.
    assert!(bob.receive(py).is_empty());
    assert!(
        bob.outbox(py).is_empty(),
        "python outbox: {:?}",
        bob.outbox(py)
    );

    // Maintenance against a reference relay.
    let r = rt.block_on(alice.maintain(Default::default())).unwrap();
    assert!(!r.republished);
}

trait ParseId {
    fn parse_id(&self) -> retalk::UserId;
}

impl ParseId for String {
    fn parse_id(&self) -> retalk::UserId {
        retalk::UserId::parse(self, "peer").unwrap()
    }
}

fn fresh_rust_user_meets_python_001() {
    fresh_rust_user_meets_python(Ver::V001);
}

fn fresh_rust_user_meets_python_030() {
    fresh_rust_user_meets_python(Ver::V030);
}

fn rust_pair_at_python_relay_001() {
    rust_pair(Ver::V001);
}

fn rust_pair_at_python_relay_030() {
    rust_pair(Ver::V030);
}

fn rust_and_python_users_at_python_relay_001() {
    mixed_pair(Ver::V001);
}

fn rust_and_python_users_at_python_relay_030() {
    mixed_pair(Ver::V030);
}

/// The 0.3.0 relay's refused-body answer to our client: a Python 0.3.0
/// user blocking our user nacks its message; our re-send is refused with
/// the recipient's signature, which our client verifies before dropping
/// the message and resetting its sessions.
fn python_030_refusal_at_python_relay_030() {
    let py = harness::pyref();
    let tmp = tempdir("refusal-at-py030");
    let relay = PyRelay::start(py, Ver::V030, &tmp.path().join("relay.db"), None, &[]);
    let rt = runtime();
    let rust = rust_user(&rt, tmp.path(), "rusty", &relay.url, 5);
    let pyu = PyUser::new(Ver::V030, tmp.path(), "blocker", &relay.url);
    let p = pyu.publish(py, 5);
    harness::python_030_refuses_rust_sender(py, &rt, &rust, &pyu, &p);
}

crate::cases! {
    python: [fresh_rust_user_meets_python_001, fresh_rust_user_meets_python_030, rust_pair_at_python_relay_001, rust_pair_at_python_relay_030, rust_and_python_users_at_python_relay_001, rust_and_python_users_at_python_relay_030, python_030_refusal_at_python_relay_030],
    plain: [],
}
