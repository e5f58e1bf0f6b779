//! Two identities talk through a real relay on loopback: exact plaintext
//! both ways, acknowledgements empty both outboxes, the relay never holds
//! plaintext and forgets delivered mail.

use retalk_testkit::*;

#[tokio::test]
async fn a_to_b_and_back_exact_plaintext() {
    let (relay, _tmp, alice, bob) = pair().await;

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

/// The bytes of a SQLite database and its WAL, to search for plaintext.
fn db_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut out = std::fs::read(path).unwrap_or_default();
    let wal = format!("{}-wal", path.display());
    out.extend(std::fs::read(wal).unwrap_or_default());
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn relay_never_holds_plaintext_and_forgets_delivered_mail() {
    let (relay, tmp, alice, bob) = pair().await;
    let secret = "the eagle lands at midnight 7f3a";

    alice.send(&bob.user_id(), secret).await.unwrap();
    alice.send(&bob.user_id(), secret).await.unwrap();
    {
        let sql = relay.sql();
        let bodies: Vec<String> = sql
            .prepare("SELECT body FROM messages WHERE recipient=?1")
            .unwrap()
            .query_map([bob.user_id().as_str()], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(bodies.len(), 2);
        // Two sends of the same text are two different ciphertexts.
        assert_ne!(bodies[0], bodies[1]);
        for b in &bodies {
            assert!(!b.contains("eagle"));
        }
    }
    assert!(!contains(&db_bytes(&relay.db()), secret.as_bytes()));
    // The sender's store keeps only ciphertext in its outbox.
    assert!(!contains(
        &db_bytes(&tmp.path().join("alice/retalk.db")),
        secret.as_bytes()
    ));

    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| m.text == secret));
    assert_ne!(got[0].id, got[1].id);
    let left: i64 = relay
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE recipient=?1",
            [bob.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "delivered mail must be gone from the relay");
    assert!(!contains(&db_bytes(&relay.db()), secret.as_bytes()));
    // Nor does the receiver's store keep the text once it was returned.
    assert!(!contains(
        &db_bytes(&tmp.path().join("bob/retalk.db")),
        secret.as_bytes()
    ));
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn every_message_is_acknowledged_and_outboxes_empty() {
    let (relay, _tmp, alice, bob) = pair().await;
    for round in 0..3 {
        for i in 0..3 {
            alice
                .send(&bob.user_id(), &format!("a{round}.{i}"))
                .await
                .unwrap();
            bob.send(&alice.user_id(), &format!("b{round}.{i}"))
                .await
                .unwrap();
        }
        let a: Vec<String> = texts(&alice).await;
        let b: Vec<String> = texts(&bob).await;
        let want = |p: &str| {
            (0..3)
                .map(|i| format!("{p}{round}.{i}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(a, want("b"));
        assert_eq!(b, want("a"));
    }
    // The last acknowledgements are still in the mailboxes.
    assert!(alice.receive().await.unwrap().is_empty());
    assert!(bob.receive().await.unwrap().is_empty());
    assert_eq!(alice.outbox_len().unwrap(), 0);
    assert_eq!(bob.outbox_len().unwrap(), 0);
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn display_names_prefer_saved_peers() {
    let (relay, tmp, alice, bob) = pair().await;
    let anon = retalk::User::create_with(
        &tmp.path().join("anon"),
        PASS,
        "",
        Some(&relay.url()),
        cheap(),
    )
    .await
    .unwrap();
    anon.publish(5, false).await.unwrap();

    alice.send(&bob.user_id(), "1").await.unwrap();
    anon.send(&bob.user_id(), "2").await.unwrap();
    let got = bob.receive().await.unwrap();
    assert_eq!(got[0].name, "~alice");
    assert_eq!(got[1].name, "", "no saved name and no self-chosen name");

    bob.add_peer("my-alice", &alice.user_id(), None).unwrap();
    alice.send(&bob.user_id(), "3").await.unwrap();
    let got = bob.receive().await.unwrap();
    assert_eq!(got[0].name, "my-alice");
    relay.relay.shutdown().await;
}
