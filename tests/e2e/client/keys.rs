//! Keys the relay serves are checked; one-time keys, the fallback key and
//! their upkeep; healing a relay that forgot us.

use std::time::Duration;

use retalk::proto::WireError;
use retalk::{ClientError, MaintainOptions, User};
use retalk_testkit::*;

fn unclaimed(relay: &TestRelay, u: &User) -> i64 {
    relay
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM otks WHERE owner=?1 AND claimed=0",
            [u.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap()
}

fn fallback_key(relay: &TestRelay, u: &User) -> String {
    relay
        .sql()
        .query_row(
            "SELECT fallback_key FROM users WHERE id=?1",
            [u.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn tampered_key_in_relay_database_gives_pin_mismatch() {
    let (relay, tmp, alice, bob) = pair().await;
    let mallory = user(tmp.path(), "mallory", &relay.url()).await;

    // The relay swaps Bob's identity key for Mallory's.
    relay
        .sql()
        .execute(
            "UPDATE users SET identity_key=?1 WHERE id=?2",
            [mallory.identity_key(), bob.user_id().to_string()],
        )
        .unwrap();
    let err = alice.send(&bob.user_id(), "secret").await.unwrap_err();
    match &err {
        ClientError::PinMismatch { peer, .. } => assert_eq!(*peer, bob.user_id()),
        other => panic!("expected PIN MISMATCH, got {other:?}"),
    }
    assert!(err.to_string().contains("PIN MISMATCH"));
    assert!(err.is_refusal());
    // Nothing was encrypted: no session, nothing queued, nothing sent.
    assert_eq!(alice.session_count(&bob.user_id()).unwrap(), 0);
    assert_eq!(alice.outbox_len().unwrap(), 0);
    let sent: i64 = relay
        .sql()
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sent, 0);

    // The receiving side checks too: a pre-key message from Alice while
    // the relay lies about Alice's keys is refused, not trusted.
    relay
        .sql()
        .execute(
            "UPDATE users SET identity_key=?1 WHERE id=?2",
            [bob.identity_key(), bob.user_id().to_string()],
        )
        .unwrap();
    alice.send(&bob.user_id(), "hello").await.unwrap();
    relay
        .sql()
        .execute(
            "UPDATE users SET signing_key=?1 WHERE id=?2",
            [mallory.signing_key(), alice.user_id().to_string()],
        )
        .unwrap();
    let inbox = bob.receive_inbox(None).await.unwrap();
    assert!(inbox.messages.is_empty());
    assert_eq!(inbox.problems.len(), 1);
    assert_eq!(inbox.problems[0].from, alice.user_id());
    assert!(inbox.problems[0].reason.contains("PIN MISMATCH"));
    assert_eq!(bob.session_count(&alice.user_id()).unwrap(), 0);

    // Once the relay serves the truth, Alice's re-send gets through.
    relay
        .sql()
        .execute(
            "UPDATE users SET signing_key=?1 WHERE id=?2",
            [alice.signing_key(), alice.user_id().to_string()],
        )
        .unwrap();
    assert_eq!(alice.flush_outbox(Duration::ZERO).await.unwrap(), 1);
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "hello");
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn pinned_identity_key_is_enforced() {
    let (relay, tmp, alice, bob) = pair().await;
    let carol = user(tmp.path(), "carol", &relay.url()).await;

    // A pin that is not Bob's key: refused although the id matches.
    alice
        .add_peer("bob", &bob.user_id(), Some(&carol.identity_key()))
        .unwrap();
    let err = alice.send(&bob.user_id(), "x").await.unwrap_err();
    assert!(matches!(err, ClientError::PinMismatch { .. }), "{err:?}");
    assert_eq!(alice.outbox_len().unwrap(), 0);

    // The right pin works.
    alice
        .add_peer("bob", &bob.user_id(), Some(&bob.identity_key()))
        .unwrap();
    alice.send(&bob.user_id(), "pinned").await.unwrap();
    assert_eq!(bob.receive().await.unwrap()[0].text, "pinned");
    // A wrong pin for an established session is refused at once.
    let err = alice
        .add_peer("bob2", &bob.user_id(), Some(&carol.identity_key()))
        .unwrap_err();
    assert!(matches!(err, ClientError::PinMismatch { .. }));
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn drained_one_time_keys_fall_back_to_the_fallback_key() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let bob = User::create_with(
        &tmp.path().join("bob"),
        PASS,
        "bob",
        Some(&relay.url()),
        cheap(),
    )
    .await
    .unwrap();
    bob.publish(2, false).await.unwrap();
    assert_eq!(unclaimed(&relay, &bob), 2);

    let mut senders = Vec::new();
    for name in ["s1", "s2", "s3", "s4"] {
        senders.push(user(tmp.path(), name, &relay.url()).await);
    }
    for (i, s) in senders.iter().enumerate() {
        s.send(&bob.user_id(), &format!("from {i}")).await.unwrap();
    }
    // Two senders used the one-time keys; the others had only the
    // fallback key left.
    assert_eq!(unclaimed(&relay, &bob), 0);
    let got = bob.receive().await.unwrap();
    let mut texts: Vec<String> = got.into_iter().map(|m| m.text).collect();
    texts.sort();
    assert_eq!(texts, ["from 0", "from 1", "from 2", "from 3"]);
    // Sessions from the fallback key work both ways.
    for s in &senders {
        assert_eq!(s.session_count(&bob.user_id()).unwrap(), 1);
        bob.send(&s.user_id(), "reply").await.unwrap();
        assert_eq!(s.receive().await.unwrap()[0].text, "reply");
    }
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn maintain_replenishes_rotates_and_idles_when_healthy() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let bob = user(tmp.path(), "bob", &relay.url()).await;
    let fk = fallback_key(&relay, &bob);

    let report = bob.maintain(MaintainOptions::default()).await.unwrap();
    assert_eq!(report.unclaimed, 100);
    assert!(!report.republished && !report.replenished && !report.fallback_rotated);
    assert_eq!((report.resent, report.acks_sent), (0, 0));
    assert_eq!(unclaimed(&relay, &bob), 100);
    assert_eq!(fallback_key(&relay, &bob), fk);

    // Peers claim most keys: below the minimum, a batch is published.
    relay
        .sql()
        .execute(
            "UPDATE otks SET claimed=1 WHERE id IN \
             (SELECT id FROM otks WHERE owner=?1 ORDER BY id LIMIT 85)",
            [bob.user_id().as_str()],
        )
        .unwrap();
    let report = bob.maintain(MaintainOptions::default()).await.unwrap();
    assert_eq!(report.unclaimed, 15);
    assert!(report.replenished && !report.fallback_rotated);
    assert_eq!(unclaimed(&relay, &bob), 115);
    assert_eq!(fallback_key(&relay, &bob), fk);

    // A fallback key older than the maximum age is rotated.
    let opts = MaintainOptions {
        fallback_max_age: Duration::ZERO,
        ..Default::default()
    };
    let report = bob.maintain(opts).await.unwrap();
    assert!(report.fallback_rotated && !report.replenished);
    assert_ne!(fallback_key(&relay, &bob), fk);
    assert_eq!(unclaimed(&relay, &bob), 115);
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn message_in_flight_to_previous_fallback_key_decrypts_after_rotation() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let bob = User::create_with(
        &tmp.path().join("bob"),
        PASS,
        "bob",
        Some(&relay.url()),
        cheap(),
    )
    .await
    .unwrap();
    bob.publish(0, false).await.unwrap(); // only a fallback key
    let alice = user(tmp.path(), "alice", &relay.url()).await;
    let carol = user(tmp.path(), "carol", &relay.url()).await;
    let old = fallback_key(&relay, &bob);
    alice
        .send(&bob.user_id(), "sent to the old fallback key")
        .await
        .unwrap();

    let rotate = MaintainOptions {
        min_otks: 0,
        fallback_max_age: Duration::ZERO,
        ..Default::default()
    };
    assert!(bob.maintain(rotate).await.unwrap().fallback_rotated);
    assert_ne!(fallback_key(&relay, &bob), old);
    carol
        .send(&bob.user_id(), "sent to the new fallback key")
        .await
        .unwrap();

    let got = bob.receive_inbox(None).await.unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let texts: Vec<&str> = got.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "sent to the old fallback key",
            "sent to the new fallback key"
        ]
    );
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn relay_that_forgot_us_is_healed_by_ensure_published() {
    let (relay, _tmp, alice, bob) = pair().await;
    assert!(
        !bob.ensure_published().await.unwrap(),
        "healthy: nothing to do"
    );

    // The relay loses Bob.
    let sql = relay.sql();
    sql.execute("DELETE FROM users WHERE id=?1", [bob.user_id().as_str()])
        .unwrap();
    sql.execute("DELETE FROM otks WHERE owner=?1", [bob.user_id().as_str()])
        .unwrap();
    let err = alice.send(&bob.user_id(), "x").await.unwrap_err();
    match err {
        ClientError::Relay {
            tool,
            error: WireError::NotFound(reason),
        } => {
            assert_eq!(tool, "claim_key");
            assert!(!reason.is_empty(), "the relay's reason is kept");
        }
        other => panic!("expected the relay's refusal, got {other:?}"),
    }
    assert_eq!(
        alice.outbox_len().unwrap(),
        0,
        "a refused send is not queued"
    );

    assert!(bob.ensure_published().await.unwrap());
    assert_eq!(unclaimed(&relay, &bob), 100);
    assert!(!bob.ensure_published().await.unwrap());
    alice.send(&bob.user_id(), "after healing").await.unwrap();
    assert_eq!(bob.receive().await.unwrap()[0].text, "after healing");
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn unreachable_relay_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Bind then drop a listener: a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let u = User::create_with(&tmp.path().join("u"), PASS, "u", Some(&url), cheap())
        .await
        .unwrap();
    let err = u.publish(5, false).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
    assert!(!err.is_refusal());
    assert!(u.receive().await.is_err());
}
