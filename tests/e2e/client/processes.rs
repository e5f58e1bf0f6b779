//! Two OS processes sending from one store at the same time keep the Olm
//! ratchet consistent: the store's file lock serialises whole operations.
//! If two sends ever encrypted on the same ratchet state, one of the
//! messages would not decrypt at the receiver.

use std::collections::BTreeSet;

use retalk::User;
use retalk_testkit::*;

const PER_PROCESS: usize = 12;

async fn sender_child() {
    let dir = std::env::var("RETALK_TEST_DIR").unwrap();
    let tag = std::env::var("RETALK_TEST_TAG").unwrap();
    let to = std::env::var("RETALK_TEST_TO").unwrap();
    let mut u = User::open(dir.as_ref(), PASS).await.unwrap();
    u.set_relay_url(&std::env::var("RETALK_TEST_URL").unwrap());
    let to = u.resolve_peer(&to).unwrap();
    for i in 0..PER_PROCESS {
        u.send(&to, &format!("{tag}-{i}")).await.unwrap();
    }
}

#[tokio::test]
async fn two_processes_send_from_one_store_at_once() {
    if child_role().is_some() {
        return sender_child().await;
    }
    let (relay, tmp, alice, bob) = pair().await;
    let env = |tag: &str| {
        vec![
            (CHILD_ROLE, "send".to_owned()),
            ("RETALK_TEST_TAG", tag.to_owned()),
            (
                "RETALK_TEST_DIR",
                tmp.path().join("alice").display().to_string(),
            ),
            ("RETALK_TEST_URL", relay.url()),
            ("RETALK_TEST_TO", bob.user_id().to_string()),
        ]
    };
    // Neither process has a session yet: the first send of each races to
    // create one, and only one may win.
    let (p, q) = (env("p"), env("q"));
    let name = &test_name(module_path!(), "two_processes_send_from_one_store_at_once");
    let (a, b) = tokio::join!(run_child(name, &p), run_child(name, &q));
    assert!(a.status.success(), "{}", output_text(&a));
    assert!(b.status.success(), "{}", output_text(&b));

    let inbox = bob.receive_inbox(None).await.unwrap();
    assert!(inbox.problems.is_empty(), "{:?}", inbox.problems);
    let got: BTreeSet<String> = inbox.messages.into_iter().map(|m| m.text).collect();
    let want: BTreeSet<String> = ["p", "q"]
        .iter()
        .flat_map(|t| (0..PER_PROCESS).map(move |i| format!("{t}-{i}")))
        .collect();
    assert_eq!(got, want);
    assert_eq!(alice.session_count(&bob.user_id()).unwrap(), 1);
    assert_eq!(alice.outbox_len().unwrap(), 2 * PER_PROCESS);
    alice.receive().await.unwrap();
    assert_eq!(alice.outbox_len().unwrap(), 0);
    relay.relay.shutdown().await;
}
