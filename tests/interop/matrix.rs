//! The Python-client columns of the compatibility matrix in
//! `docs/compatibility.md`: which reference client generation works with
//! which relay. Python relays serve only their own generation (each reads
//! only its own `auth` field names); our relay serves both at once, so a
//! 0.0.1 user and a 0.3.0 user can talk to each other through it, which no
//! Python relay allows.

use retalk_testkit::pyref as harness;

use harness::{parallel, tempdir, PyRelay, PyUser, RustRelay, Ver};
use serde_json::json;

/// Each reference client generation at each Python relay generation: its
/// own works, the other is refused with the relay's bare KeyError text.
fn python_clients_at_python_relays() {
    let py = harness::pyref();
    let tmp = tempdir("matrix-py");
    let relays = parallel(vec![Ver::V001, Ver::V030], |v| {
        PyRelay::start(
            py,
            v,
            &tmp.path().join(format!("relay-{}.db", v.as_str())),
            None,
            &[],
        )
    });
    let cells: Vec<(Ver, usize)> = vec![
        (Ver::V001, 0),
        (Ver::V001, 1),
        (Ver::V030, 0),
        (Ver::V030, 1),
    ];
    let out = parallel(cells.clone(), |(client, r)| {
        let u = PyUser::new(
            client,
            tmp.path(),
            &format!("c{}-r{r}", client.as_str()),
            &relays[r].url,
        );
        py.driver(client, "count_keys", &u.args(json!({})))
    });
    for ((client, r), o) in cells.into_iter().zip(out) {
        let relay = relays[r].ver;
        if client == relay {
            assert_eq!(o.code, 0, "{client:?} at {relay:?}: {:?}", o.json);
            assert_eq!(o.json, json!({"unclaimed": 0, "has_fallback": false}));
        } else {
            let field = if relay == Ver::V030 {
                "'fingerprint'"
            } else {
                "'user_id'"
            };
            assert_eq!(o.code, 1, "{client:?} at {relay:?}: {:?}", o.json);
            assert_eq!(
                o.json["error"],
                format!("server error from count_keys: {field}"),
                "{client:?} at {relay:?}"
            );
        }
    }
}

/// Through our relay, a Python 0.0.1 user and a Python 0.3.0 user talk
/// both ways, each starting a session in turn (pre-key messages both ways),
/// and each one's acks empty the other's outbox.
fn python_generations_talk_through_our_relay() {
    let py = harness::pyref();
    let tmp = tempdir("matrix-mixed");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    // two pairs: in each, a different generation starts the session
    let old1 = PyUser::new(Ver::V001, tmp.path(), "old1", &relay.url);
    let new1 = PyUser::new(Ver::V030, tmp.path(), "new1", &relay.url);
    let old2 = PyUser::new(Ver::V001, tmp.path(), "old2", &relay.url);
    let new2 = PyUser::new(Ver::V030, tmp.path(), "new2", &relay.url);
    let ids = parallel(vec![&old1, &new1, &old2, &new2], |u| u.publish(py, 5));
    let id = |u: &PyUser| match u.name.as_str() {
        "old1" => ids[0].clone(),
        "new1" => ids[1].clone(),
        "old2" => ids[2].clone(),
        _ => ids[3].clone(),
    };
    parallel(vec![(&old1, &new1), (&new2, &old2)], |(first, second)| {
        first.run(
            py,
            "send",
            json!({"to": id(second), "text": format!("hi {}", second.name)}),
        );
        assert_eq!(first.outbox(py)[0]["mtype"], 0, "pre-key");
        let got = second.receive(py);
        assert_eq!(
            got,
            vec![(
                id(first),
                format!("~{}", first.name),
                format!("hi {}", second.name)
            )]
        );
        second.run(py, "send", json!({"to": id(first), "text": "hello back"}));
        let got = first.receive(py);
        assert_eq!(
            got,
            vec![(
                id(second),
                format!("~{}", second.name),
                "hello back".to_owned()
            )]
        );
        assert!(first.outbox(py).is_empty());
        assert!(second.receive(py).is_empty(), "only the ack");
        assert!(second.outbox(py).is_empty());
    });
}

crate::cases! {
    python: [python_clients_at_python_relays, python_generations_talk_through_our_relay],
    plain: [],
}
