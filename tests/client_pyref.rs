//! This client against the Python reference: its relays (0.0.1 and 0.3.0)
//! and its users of the same version, both directions, with
//! acknowledgements clearing both outboxes. Skipped loudly when the
//! reference cannot be installed (a failure under `RETALK_REQUIRE_PYREF`).

#[path = "pyref/harness.rs"]
mod harness;
mod support;

use std::time::Duration;

use harness::{pyref, PyRelay, PyUser, Ver};
use retalk::{User, UserId};
use serde_json::json;
use support::{cheap, PASS};

async fn talk_with_python(ver: Ver, test: &str) {
    let Some(py) = pyref(test) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let relay = PyRelay::start(py, ver, &tmp.path().join("relay.db"), None, &[]);
    let bob = PyUser::new(ver, tmp.path(), "bob", &relay.url);
    let bob_id = UserId::parse(&bob.publish(py, 20), "bob").unwrap();

    let alice = User::create_with(
        &tmp.path().join("alice"),
        PASS,
        "alice",
        Some(&relay.url),
        cheap(),
    )
    .await
    .unwrap();
    // A relay that never saw Alice: the first command publishes her.
    assert!(alice.ensure_published().await.unwrap());
    assert!(!alice.ensure_published().await.unwrap());
    // Reference relays do not wait; nothing relay-specific is sent to them.
    assert!(!alice.relay_supports_wait().await.unwrap());

    let text = "from rust: ünïcödé \u{1F980} \"q\" \n";
    let id = alice.send(&bob_id, text).await.unwrap();
    let got = bob.receive(py);
    assert_eq!(
        got,
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
    let inbox = alice
        .receive_inbox(Some(Duration::from_secs(2)))
        .await
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
    let r = alice.maintain(Default::default()).await.unwrap();
    assert!(!r.republished);
    let _ = id;
}

#[tokio::test]
async fn talks_with_python_0_0_1_through_its_relay() {
    talk_with_python(Ver::V001, "talks_with_python_0_0_1_through_its_relay").await;
}

#[tokio::test]
async fn talks_with_python_0_3_0_through_its_relay() {
    talk_with_python(Ver::V030, "talks_with_python_0_3_0_through_its_relay").await;
}
