//! Per-user bounds: one-time keys and mailbox size are refused past their
//! caps with 429, never evicting anything.

use retalk::proto::tools::{ClaimKey, CountKeys, ReadMessages};
use retalk::proto::KeyPairSigner;
use retalk_testkit::*;

#[tokio::test]
async fn one_time_keys_per_user_are_capped() {
    let r = start_with(|c| c.max_otks_per_user = 5).await;
    let bob = KeyPairSigner::random();
    r.ok(&bob, &publish_req(&bob, 3, false)).await;
    let (status, body) = r.call(&bob, &publish_req(&bob, 3, true)).await;
    assert_eq!(status, 429, "{body}");
    let text = error_text(&body);
    assert!(
        text.contains("one-time key limit") && text.contains('5'),
        "{text}"
    );
    // Nothing from the refused publish was stored, not even its fallback.
    let counts = r.ok(&bob, &CountKeys).await;
    assert_eq!(
        counts,
        serde_json::json!({"unclaimed": 3, "has_fallback": false})
    );
    // Claimed keys make room again.
    let (alice, _) = r.user(0).await;
    r.ok(&alice, &ClaimKey { peer: id_of(&bob) }).await;
    r.ok(&bob, &publish_req(&bob, 3, false)).await;
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 5);
}

#[tokio::test]
async fn default_cap_is_ten_thousand() {
    let r = start().await;
    let bob = KeyPairSigner::random();
    for _ in 0..10 {
        r.ok(&bob, &publish_req(&bob, 1000, false)).await;
    }
    let (status, _) = r.call(&bob, &publish_req(&bob, 1, false)).await;
    assert_eq!(status, 429);
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 10_000);
}

#[tokio::test]
async fn full_mailbox_refuses_without_evicting() {
    let r = start_with(|c| c.max_mailbox = 2).await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "1")).await;
    r.ok(&alice, &send_req(&bob_id, "2")).await;
    let (status, body) = r.call(&alice, &send_req(&bob_id, "3")).await;
    assert_eq!(status, 429);
    assert!(error_text(&body).contains("mailbox full"), "{body}");
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 2);
    // Emptied: room again.
    r.ok(&alice, &send_req(&bob_id, "3")).await;
}

/// A database the relay cannot write (here: another process holds the
/// write lock past the relay's 5 s patience) gives 503 and changes
/// nothing; the relay recovers once the lock is gone.
#[tokio::test]
async fn locked_database_gives_503_not_a_crash() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let db = r.dir.path().join("server.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(PATIENCE);
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let (status, body) = r.call(&alice, &send_req(&bob_id, "blocked")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_text(&body).contains("database is unavailable"),
        "{body}"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();

    r.ok(&alice, &send_req(&bob_id, "after")).await;
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1, "{mail}");
}

/// A very full mailbox is handed over in parts of at most 1000 messages,
/// oldest first; nothing is lost between the parts.
#[tokio::test]
async fn a_huge_mailbox_is_read_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = config(dir.path());
        c.audiences = vec!["http://relay.test".into()];
        c
    };
    let bob = KeyPairSigner::random();
    let bob_id = id_of(&bob);
    // Fill the mailbox directly in the file, as the reference's tools may
    // (with a current time: older mail would expire, see --message-ttl).
    {
        let relay = retalk_server::Relay::start(cfg()).await.unwrap();
        relay.shutdown().await;
        let conn = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
        conn.execute(
            "INSERT INTO users(id, identity_key, signing_key) VALUES(?1, 'x', 'y')",
            [bob_id.as_str()],
        )
        .unwrap();
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..1500 {
            conn.execute(
                "INSERT INTO messages(ts, sender, recipient, mtype, body) VALUES(unixepoch(), ?1, ?2, 1, 'AAAA')",
                rusqlite::params![format!("{i:032x}"), bob_id.as_str()],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    let relay = retalk_server::Relay::start(cfg()).await.unwrap();
    let http = client();
    let addr = format!("http://{}", relay.local_addr());
    let mut got = Vec::new();
    for want in [1000, 500, 0] {
        let body = retalk::proto::build_request(
            &ReadMessages::default(),
            &bob,
            "http://relay.test",
            retalk::proto::Dialect::Both,
            now(),
        )
        .unwrap();
        let (status, mail) = post_raw(&http, &addr, body).await;
        assert_eq!(status, 200);
        let mail = mail.as_array().unwrap().clone();
        assert_eq!(mail.len(), want);
        got.extend(mail.into_iter().map(|m| m["message_id"].as_i64().unwrap()));
    }
    assert_eq!(got, (1..=1500).collect::<Vec<i64>>());
    relay.shutdown().await;
}
