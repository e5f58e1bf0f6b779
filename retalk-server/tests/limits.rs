//! Per-user bounds: one-time keys and mailbox size are refused past their
//! caps with 429, never evicting anything.

mod common;

use common::*;
use retalk::proto::tools::{ClaimKey, CountKeys, ReadMessages};
use retalk::proto::KeyPairSigner;

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
