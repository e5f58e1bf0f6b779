//! Delivery across failures: crossed initiation, lost acknowledgements,
//! relay loss and migration, mail the client cannot or need not read.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use retalk::proto::tools::ReadMessages;
use retalk::{MaintainOptions, User};
use retalk_server::Relay;
use retalk_testkit::raw::RawPeer;
use retalk_testkit::*;

fn mail_count(relay: &TestRelay, to: &User) -> i64 {
    relay
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE recipient=?1",
            [to.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn crossed_initiation_does_not_wedge_the_pair() {
    let (relay, _tmp, alice, bob) = pair().await;

    // Both send first, before either receives: two sessions are born.
    alice.send(&bob.user_id(), "a0").await.unwrap();
    bob.send(&alice.user_id(), "b0").await.unwrap();
    let a: Vec<String> = texts(&alice).await;
    let b: Vec<String> = texts(&bob).await;
    assert_eq!(a, ["b0"]);
    assert_eq!(b, ["a0"]);
    assert_eq!(alice.session_count(&bob.user_id()).unwrap(), 2);
    assert_eq!(bob.session_count(&alice.user_id()).unwrap(), 2);

    // The pair keeps working in every order afterwards.
    for i in 1..=3 {
        alice.send(&bob.user_id(), &format!("a{i}")).await.unwrap();
        assert_eq!(bob.receive().await.unwrap()[0].text, format!("a{i}"));
        bob.send(&alice.user_id(), &format!("b{i}")).await.unwrap();
        bob.send(&alice.user_id(), &format!("c{i}")).await.unwrap();
        alice.send(&bob.user_id(), &format!("d{i}")).await.unwrap();
        let a = alice.receive_inbox(None).await.unwrap();
        let b = bob.receive_inbox(None).await.unwrap();
        assert!(a.problems.is_empty() && b.problems.is_empty());
        let a: Vec<String> = a.messages.into_iter().map(|m| m.text).collect();
        let b: Vec<String> = b.messages.into_iter().map(|m| m.text).collect();
        assert_eq!(a, [format!("b{i}"), format!("c{i}")]);
        assert_eq!(b, [format!("d{i}")]);
    }
    // Every acknowledgement made it.
    alice.receive().await.unwrap();
    bob.receive().await.unwrap();
    assert_eq!(alice.outbox_len().unwrap(), 0);
    assert_eq!(bob.outbox_len().unwrap(), 0);
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn lost_ack_means_resend_then_duplicate_is_reacked_not_shown() {
    let (relay, _tmp, alice, bob) = pair().await;

    let id = alice.send(&bob.user_id(), "once").await.unwrap();
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    // Bob's acknowledgement is lost on the way.
    assert_eq!(mail_count(&relay, &alice), 1);
    relay
        .sql()
        .execute(
            "DELETE FROM messages WHERE recipient=?1",
            [alice.user_id().as_str()],
        )
        .unwrap();

    // Not yet overdue: maintain leaves it alone.
    let r = alice.maintain(MaintainOptions::default()).await.unwrap();
    assert_eq!(r.resent, 0);
    let overdue = MaintainOptions {
        resend_after: Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(alice.maintain(overdue).await.unwrap().resent, 1);
    assert_eq!(alice.outbox_len().unwrap(), 1);

    let again = bob.receive_inbox(None).await.unwrap();
    assert!(
        again.is_empty(),
        "a re-sent copy is not shown twice: {again:?}"
    );
    assert_eq!(
        mail_count(&relay, &alice),
        1,
        "but it is acknowledged again"
    );
    assert!(alice.receive().await.unwrap().is_empty());
    assert_eq!(alice.outbox_len().unwrap(), 0);
    let _ = id;
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn moving_to_a_fresh_relay_keeps_sessions() {
    let old = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut alice = user(tmp.path(), "alice", &old.url()).await;
    let mut bob = user(tmp.path(), "bob", &old.url()).await;
    alice
        .send(&bob.user_id(), "on the old relay")
        .await
        .unwrap();
    bob.receive().await.unwrap();
    bob.send(&alice.user_id(), "reply").await.unwrap();
    alice.receive().await.unwrap();
    old.relay.shutdown().await;

    let new = TestRelay::start().await;
    alice.set_relay_url(&new.url());
    bob.set_relay_url(&new.url());
    assert!(bob.ensure_published().await.unwrap());
    assert!(alice.ensure_published().await.unwrap());
    alice
        .send(&bob.user_id(), "on the new relay")
        .await
        .unwrap();

    // No handshake: nothing claimed, and the message is a normal one.
    let claimed: i64 = new
        .sql()
        .query_row("SELECT COUNT(*) FROM otks WHERE claimed=1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(claimed, 0);
    let mtype: i64 = new
        .sql()
        .query_row(
            "SELECT mtype FROM messages WHERE recipient=?1",
            [bob.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mtype, 1);
    assert_eq!(bob.receive().await.unwrap()[0].text, "on the new relay");
    assert_eq!(alice.session_count(&bob.user_id()).unwrap(), 1);
    assert_eq!(bob.session_count(&alice.user_id()).unwrap(), 1);
    new.relay.shutdown().await;
}

#[tokio::test]
async fn message_stranded_on_a_dead_relay_is_recovered_and_its_late_copy_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let old_dir = tempfile::tempdir().unwrap();
    let old = Relay::start(config(old_dir.path())).await.unwrap();
    let mut alice = user(tmp.path(), "alice", &old.url()).await;
    let mut bob = user(tmp.path(), "bob", &old.url()).await;
    alice.send(&bob.user_id(), "stranded").await.unwrap();
    old.shutdown().await; // the relay dies with the message

    let new = TestRelay::start().await;
    alice.set_relay_url(&new.url());
    bob.set_relay_url(&new.url());
    // Alice heals first: Bob is not on the new relay yet, so her outbox
    // waits; once he is, a flush delivers it.
    assert!(alice.ensure_published().await.unwrap());
    assert!(bob.ensure_published().await.unwrap());
    assert_eq!(alice.flush_outbox(Duration::ZERO).await.unwrap(), 1);
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "stranded");
    assert!(alice.receive().await.unwrap().is_empty());
    assert_eq!(alice.outbox_len().unwrap(), 0);

    // The old relay comes back with its copy: dropped, not shown again.
    let back = Relay::start(config(old_dir.path())).await.unwrap();
    bob.set_relay_url(&back.url());
    let late = bob.receive_inbox(None).await.unwrap();
    assert!(late.is_empty(), "late duplicate surfaced: {late:?}");
    let left: i64 = rusqlite::Connection::open(old_dir.path().join("server.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE recipient=?1",
            [bob.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    back.shutdown().await;
    new.relay.shutdown().await;
}

#[tokio::test]
async fn unknown_kinds_are_acked_and_ignored_and_bad_mail_does_not_stop_the_rest() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let bob = user(tmp.path(), "bob", &relay.url()).await;
    let raw = RawPeer::new(&relay.url(), 5).await;
    let alice = user(tmp.path(), "alice", &relay.url()).await;

    // Garbage first: a "normal" message from someone with no session, and
    // bytes that are not an Olm message at all.
    raw.send_raw(&bob.user_id(), 1, STANDARD.encode([7u8; 80]))
        .await;
    raw.send_raw(&bob.user_id(), 0, STANDARD.encode(b"not olm"))
        .await;
    // Then a kind this client does not know (a later release's) and a chat
    // message on a real session.
    let mut s = raw.start_session(&bob.user_id()).await;
    let card =
        r#"{"id":"11111111111111111111111111111111","kind":"future_kind","card":{"name":"x"}}"#;
    raw.send_plain(&mut s, &bob.user_id(), card).await;
    raw.send_plain(
        &mut s,
        &bob.user_id(),
        r#"{"id":"22222222222222222222222222222222","kind":"msg","text":"after","name":"raw","group":{"id":"g"}}"#,
    )
    .await;
    alice.send(&bob.user_id(), "from alice").await.unwrap();

    let inbox = bob.receive_inbox(None).await.unwrap();
    let texts: Vec<&str> = inbox.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["after", "from alice"]);
    assert_eq!(inbox.messages[0].id, "22222222222222222222222222222222");
    assert_eq!(inbox.problems.len(), 2, "{:?}", inbox.problems);
    assert!(inbox.problems.iter().all(|p| p.from == raw.id()));

    // The raw peer gets acknowledgements for both the unknown kind and the chat.
    let mail = raw.call(&ReadMessages::default()).await.unwrap();
    // (Acknowledgements are uploaded a few at a time: any order.)
    let mut acked: Vec<String> = mail
        .iter()
        .map(|m| RawPeer::decrypt(&mut s, m.mtype, &m.body))
        .inspect(|v| assert_eq!(v["kind"], "ack"))
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    acked.sort();
    assert_eq!(
        acked,
        [
            "11111111111111111111111111111111",
            "22222222222222222222222222222222"
        ]
    );
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn waiting_receive_returns_mail_that_arrives_during_the_wait() {
    let (relay, _tmp, alice, bob) = pair().await;
    assert!(bob.relay_supports_wait().await.unwrap());

    let bob_id = bob.user_id();
    let waiting = tokio::spawn(async move {
        let inbox = bob
            .receive_inbox(Some(Duration::from_secs(30)))
            .await
            .unwrap();
        (bob, inbox)
    });
    // Poll the relay until Bob's read is actually waiting, then send.
    let deadline = std::time::Instant::now() + PATIENCE;
    while relay.relay.waiting() == 0 {
        assert!(std::time::Instant::now() < deadline, "Bob never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    alice.send(&bob_id, "worth the wait").await.unwrap();
    let (bob, inbox) = waiting.await.unwrap();
    assert_eq!(inbox.messages.len(), 1);
    assert_eq!(inbox.messages[0].text, "worth the wait");
    // Without mail, a short wait simply comes back empty.
    assert!(bob
        .receive_inbox(Some(Duration::from_secs(1)))
        .await
        .unwrap()
        .is_empty());
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn a_pair_whose_sessions_broke_heals_through_a_signed_refusal() {
    let (relay, tmp, alice, bob) = pair().await;
    alice.send(&bob.user_id(), "one").await.unwrap();
    bob.receive().await.unwrap();
    bob.send(&alice.user_id(), "two").await.unwrap();
    alice.receive().await.unwrap();
    bob.receive().await.unwrap();
    assert_eq!(
        (alice.outbox_len().unwrap(), bob.outbox_len().unwrap()),
        (0, 0)
    );

    // Bob's sessions are lost (say, a store restored from an old backup).
    rusqlite::Connection::open(tmp.path().join("bob/retalk.db"))
        .unwrap()
        .execute("DELETE FROM sessions", [])
        .unwrap();
    alice.send(&bob.user_id(), "lost").await.unwrap();
    let inbox = bob.receive_inbox(None).await.unwrap();
    assert!(inbox.messages.is_empty());
    assert_eq!(inbox.problems.len(), 1);
    let refused: i64 = relay
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM refused WHERE recipient=?1",
            [bob.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(refused, 1, "Bob signed a refusal of the unreadable message");

    // Alice's re-send is refused with Bob's signature: she stops re-sending
    // it and forgets the broken session.
    assert_eq!(alice.flush_outbox(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(alice.outbox_len().unwrap(), 0);
    assert_eq!(alice.session_count(&bob.user_id()).unwrap(), 0);
    // Her next message starts a fresh session, and the pair works again.
    alice.send(&bob.user_id(), "fresh start").await.unwrap();
    let got = bob.receive_inbox(None).await.unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    assert_eq!(got.messages[0].text, "fresh start");
    bob.send(&alice.user_id(), "welcome back").await.unwrap();
    assert_eq!(alice.receive().await.unwrap()[0].text, "welcome back");
    assert_eq!(alice.outbox_len().unwrap(), 0);
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn maintain_forgets_old_processed_hashes_at_most_once_a_day() {
    let (relay, tmp, alice, bob) = pair().await;
    let bob_db = tmp.path().join("bob").join("retalk.db");
    // Runs `sql` on Bob's store file, then counts its processed rows.
    let processed = |sql: &str| -> i64 {
        let c = rusqlite::Connection::open(&bob_db).unwrap();
        c.execute_batch(sql).unwrap();
        c.query_row("SELECT COUNT(*) FROM processed", [], |r| r.get(0))
            .unwrap()
    };
    let age_all = "UPDATE processed SET ts = ts - 100 * 86400";

    alice.send(&bob.user_id(), "old news").await.unwrap();
    assert_eq!(bob.receive().await.unwrap().len(), 1);
    alice.send(&bob.user_id(), "fresh").await.unwrap();
    assert_eq!(processed(age_all), 1, "only the first is 100 days old");
    assert_eq!(bob.receive().await.unwrap().len(), 1);

    let r = bob.maintain(MaintainOptions::default()).await.unwrap();
    assert_eq!(r.processed_forgotten, 1);
    assert_eq!(processed(""), 1, "the fresh one is kept");

    // Within a day of that pass, maintenance does not scan again.
    assert_eq!(processed(age_all), 1);
    let r = bob.maintain(MaintainOptions::default()).await.unwrap();
    assert_eq!(r.processed_forgotten, 0);
    assert_eq!(processed(""), 1);
    relay.relay.shutdown().await;
}
