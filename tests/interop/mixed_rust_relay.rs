//! Item 4 of the interop issue: mixed pairs through our relay. A Python
//! user (0.0.1 or 0.3.0, the real library) and a Rust user (our library)
//! talk both ways, each side starting a session in turn (pre-key messages
//! in both directions), names shown as the reference shows them (`~name`
//! for a self-chosen name, the local name once saved), and each side's
//! acknowledgements empty the other's outbox.

use retalk_testkit::pyref as harness;

use harness::{relay_pending, runtime, rust_user, tempdir, triples, PyUser, RustRelay, Ver};
use serde_json::json;

fn id(s: &str) -> retalk::UserId {
    retalk::UserId::parse(s, "peer").unwrap()
}

fn mixed(ver: Ver) {
    let py = harness::pyref();
    let tmp = tempdir(&format!("mixed-ours-{}", ver.as_str()));
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let rt = runtime();
    let rust = rust_user(&rt, tmp.path(), "rusty", &relay.url, 10);
    let r = rust.user_id().to_string();
    let mut pyu = PyUser::new(ver, tmp.path(), "pyuser", &relay.url);
    let p = pyu.publish(py, 10);

    // 1. Python starts the session: its first message is a pre-key message.
    pyu.run(py, "send", json!({"to": r, "text": "hello from python ✓"}));
    assert_eq!(pyu.outbox(py)[0]["mtype"], 0);
    let got = rt.block_on(rust.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(p.clone(), "~pyuser".into(), "hello from python ✓".into())]
    );
    rt.block_on(rust.send(&id(&p), "hello from rust")).unwrap();
    assert_eq!(
        pyu.receive(py),
        vec![(r.clone(), "~rusty".into(), "hello from rust".into())]
    );
    assert!(
        pyu.outbox(py).is_empty(),
        "the Rust ack emptied the Python outbox"
    );
    assert!(rt.block_on(rust.receive()).unwrap().is_empty());
    assert_eq!(rust.outbox_len().unwrap(), 0, "the Python ack emptied ours");
    assert_eq!(rust.session_count(&id(&p)).unwrap(), 1);

    // 2. Saved names on both sides.
    rust.add_peer("py-friend", &id(&p), None).unwrap();
    pyu.names.insert(r.clone(), json!("rust-friend"));
    pyu.run(py, "send", json!({"to": r, "text": "named"}));
    let got = rt.block_on(rust.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(p.clone(), "py-friend".into(), "named".into())]
    );
    rt.block_on(rust.send(&id(&p), "named too")).unwrap();
    assert_eq!(
        pyu.receive(py),
        vec![(r.clone(), "rust-friend".into(), "named too".into())]
    );

    // 3. Rust starts a session with a second Python user.
    let py2 = PyUser::new(ver, tmp.path(), "second", &relay.url);
    let p2 = py2.publish(py, 10);
    rt.block_on(rust.send(&id(&p2), "rust starts")).unwrap();
    rt.block_on(rust.send(&id(&p2), "and goes on")).unwrap();
    assert_eq!(
        rust.outbox_len().unwrap(),
        3,
        "one unacked to pyuser, two to second"
    );
    assert_eq!(
        py2.receive(py),
        vec![
            (r.clone(), "~rusty".into(), "rust starts".into()),
            (r.clone(), "~rusty".into(), "and goes on".into()),
        ]
    );
    py2.run(py, "send", json!({"to": r, "text": "python answers"}));
    assert_eq!(py2.outbox(py)[0]["mtype"], 1, "on the session Rust started");
    let got = rt.block_on(rust.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(p2.clone(), "~second".into(), "python answers".into())]
    );
    assert_eq!(rust.session_count(&id(&p2)).unwrap(), 1);
    assert!(py2.receive(py).is_empty());
    assert!(py2.outbox(py).is_empty());
    assert!(pyu.receive(py).is_empty());
    assert!(pyu.outbox(py).is_empty());
    assert!(rt.block_on(rust.receive()).unwrap().is_empty());
    assert_eq!(rust.outbox_len().unwrap(), 0, "every message acknowledged");
    for who in [&r, &p, &p2] {
        assert_eq!(relay_pending(&relay.db, who), 0);
    }
}

fn mixed_with_python_001() {
    mixed(Ver::V001);
}

fn mixed_with_python_030() {
    mixed(Ver::V030);
}

/// Both sides start a session at the same time (each sends before reading
/// the other's pre-key message). The 0.3.0 reference and our client keep
/// both sessions, so everything arrives and is acknowledged.
fn crossed_start_with_python_030() {
    let py = harness::pyref();
    let tmp = tempdir("mixed-crossed");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let rt = runtime();
    let rust = rust_user(&rt, tmp.path(), "rusty", &relay.url, 10);
    let r = rust.user_id().to_string();
    let pyu = PyUser::new(Ver::V030, tmp.path(), "pyuser", &relay.url);
    let p = pyu.publish(py, 10);

    pyu.run(py, "send", json!({"to": r, "text": "py at the same time"}));
    rt.block_on(rust.send(&id(&p), "rust at the same time"))
        .unwrap();
    let got = rt.block_on(rust.receive()).unwrap();
    assert_eq!(
        triples(&got),
        vec![(p.clone(), "~pyuser".into(), "py at the same time".into())]
    );
    assert_eq!(rust.session_count(&id(&p)).unwrap(), 2);
    assert_eq!(
        pyu.receive(py),
        vec![(r.clone(), "~rusty".into(), "rust at the same time".into())]
    );
    assert_eq!(
        py.drive(Ver::V030, "sessions", &json!({"store": pyu.store}))["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // and the conversation goes on, whichever session each side picks
    for round in 0..2 {
        rt.block_on(rust.send(&id(&p), &format!("rust {round}")))
            .unwrap();
        pyu.run(py, "send", json!({"to": r, "text": format!("py {round}")}));
        let got = rt.block_on(rust.receive()).unwrap();
        assert_eq!(
            got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            [format!("py {round}")]
        );
        let got = pyu.receive(py);
        assert_eq!(
            got.into_iter().map(|m| m.2).collect::<Vec<_>>(),
            [format!("rust {round}")]
        );
    }
    assert!(rt.block_on(rust.receive()).unwrap().is_empty());
    assert!(pyu.receive(py).is_empty());
    assert_eq!(rust.outbox_len().unwrap(), 0);
    assert!(pyu.outbox(py).is_empty());
}

/// Through our relay: a Python 0.3.0 user blocking our user nacks its
/// message; our relay refuses the re-send with the signed refusal, which
/// our client verifies before dropping the message and its sessions.
fn python_030_refuses_a_rust_sender() {
    let py = harness::pyref();
    let tmp = tempdir("mixed-refusal");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let rt = runtime();
    let rust = rust_user(&rt, tmp.path(), "rusty", &relay.url, 5);
    let pyu = PyUser::new(Ver::V030, tmp.path(), "blocker", &relay.url);
    let p = pyu.publish(py, 5);
    harness::python_030_refuses_rust_sender(py, &rt, &rust, &pyu, &p);
}

crate::cases! {
    python: [mixed_with_python_001, mixed_with_python_030, crossed_start_with_python_030, python_030_refuses_a_rust_sender],
    plain: [],
}
