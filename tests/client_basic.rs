//! Two identities talk through a real relay on loopback: exact plaintext
//! both ways, acknowledgements empty both outboxes, the relay never holds
//! plaintext and forgets delivered mail.

mod support;

use support::*;

#[tokio::test]
async fn a_to_b_and_back_exact_plaintext() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let alice = user(tmp.path(), "alice", &relay.url()).await;
    let bob = user(tmp.path(), "bob", &relay.url()).await;

    let text = "héllo bob \u{1F980} \"quotes\" \\ \n second line";
    let id = alice.send(&bob.user_id(), text).await.unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(alice.outbox_len().unwrap(), 1);

    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, text);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].from, alice.user_id());
    assert_eq!(got[0].name, "~alice");

    bob.add_peer("al", &alice.user_id(), None).unwrap();
    let reply = bob.send(&alice.user_id(), "hi alice").await.unwrap();
    let got = alice.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "hi alice");
    assert_eq!(got[0].id, reply);
    assert_eq!(got[0].name, "~bob");
    // Alice's receive also processed Bob's acknowledgement.
    assert_eq!(alice.outbox_len().unwrap(), 0);
    assert_eq!(bob.outbox_len().unwrap(), 1);
    assert!(bob.receive().await.unwrap().is_empty());
    assert_eq!(bob.outbox_len().unwrap(), 0);
    relay.relay.shutdown().await;
}
