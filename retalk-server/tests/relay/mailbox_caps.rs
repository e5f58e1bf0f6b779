//! Mailbox bounds (issue 15): a default cap per recipient, a per-sender
//! share, a byte quota, expiry of undelivered mail, and refusals pruned when
//! a new one arrives.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use retalk::proto::tools::{MessageType, Nack, ReadMessages, SendMessage};
use retalk::proto::{KeyPairSigner, RequestSigner, UserId};
use retalk_server::{Config, Relay};
use retalk_testkit::*;
use sha2::{Digest, Sha256};

fn sized(to: &UserId, bytes: usize) -> SendMessage {
    SendMessage {
        to: to.clone(),
        mtype: MessageType::Normal,
        body: "A".repeat(bytes),
    }
}

#[test]
fn defaults_bound_every_mailbox() {
    let c = Config::default();
    assert_eq!(c.max_mailbox, 10_000);
    assert_eq!(c.max_mailbox_per_sender, 1_000);
    assert_eq!(c.max_mailbox_bytes, 256 * 1024 * 1024);
    assert_eq!(c.message_ttl.as_secs(), 30 * 24 * 3600);
}

/// One sender filling its share cannot lock other senders out.
#[tokio::test]
async fn one_sender_cannot_fill_a_mailbox_for_everyone() {
    let r = start_with(|c| {
        c.max_mailbox = 5;
        c.max_mailbox_per_sender = 2;
    })
    .await;
    let (mallory, mallory_id) = r.user(0).await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&mallory, &send_req(&bob_id, "1")).await;
    r.ok(&mallory, &send_req(&bob_id, "2")).await;
    let (status, body) = r.call(&mallory, &send_req(&bob_id, "3")).await;
    assert_eq!(status, 429, "{body}");
    let text = error_text(&body);
    assert!(
        text.contains("mailbox full for sender") && text.contains("per-sender cap 2"),
        "{text}"
    );
    // Someone else still gets through.
    r.ok(&alice, &send_req(&bob_id, "from alice")).await;
    // Once bob reads mallory's mail, mallory has room again.
    r.ok(
        &bob,
        &ReadMessages {
            peer: Some(mallory_id),
            ..Default::default()
        },
    )
    .await;
    r.ok(&mallory, &send_req(&bob_id, "3")).await;
}

/// Bytes are bounded too: many large messages cannot fill the disk.
#[tokio::test]
async fn a_mailbox_has_a_byte_quota() {
    let r = start_with(|c| c.max_mailbox_bytes = 10_000).await;
    let (alice, _) = r.user(0).await;
    let (carol, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &sized(&bob_id, 6_000)).await;
    let (status, body) = r.call(&carol, &sized(&bob_id, 6_000)).await;
    assert_eq!(status, 429, "{body}");
    let text = error_text(&body);
    assert!(text.contains("bytes") && text.contains("10000"), "{text}");
    // What fits still goes in; nothing was evicted.
    r.ok(&carol, &sized(&bob_id, 4_000)).await;
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 2);
    // Delivered mail frees its bytes.
    r.ok(&carol, &sized(&bob_id, 9_000)).await;
}

/// Mail a relay already held when it was upgraded counts against the caps.
#[tokio::test]
async fn the_caps_count_mail_stored_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_mailbox = 3;
    let relay = Relay::start(cfg.clone()).await.unwrap();
    let r = TestRelay {
        relay,
        dir,
        http: client(),
    };
    let (alice, _) = r.user(0).await;
    let (_bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "1")).await;
    r.ok(&alice, &send_req(&bob_id, "2")).await;
    let TestRelay { relay, dir, http } = r;
    relay.shutdown().await;
    // Forget the schema version, as a file written by the reference would
    // have none.
    let db = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
    db.execute_batch("PRAGMA user_version=0;").unwrap();
    drop(db);
    let relay = Relay::start(cfg).await.unwrap();
    let r = TestRelay { relay, dir, http };
    r.ok(&alice, &send_req(&bob_id, "3")).await;
    let (status, _) = r.call(&alice, &send_req(&bob_id, "4")).await;
    assert_eq!(status, 429);
}

/// Schema 3's totals per recipient and per (recipient, sender) and the
/// triggers that kept them, as a relay before schema 4 left them in its
/// file.
const SCHEMA_3: &str = "
CREATE TABLE retalk_mailbox_totals(
    recipient TEXT NOT NULL PRIMARY KEY,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO retalk_mailbox_totals(recipient, count, bytes)
    SELECT ifnull(recipient, ''), COUNT(*), ifnull(SUM(length(CAST(body AS BLOB))), 0)
    FROM messages GROUP BY 1;
CREATE TABLE retalk_mailboxes(
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY(recipient, sender)
) WITHOUT ROWID;
INSERT INTO retalk_mailboxes(recipient, sender, count, bytes)
    SELECT ifnull(recipient, ''), ifnull(sender, ''), COUNT(*),
           ifnull(SUM(length(CAST(body AS BLOB))), 0)
    FROM messages GROUP BY 1, 2;
CREATE TRIGGER retalk_mailboxes_in AFTER INSERT ON messages BEGIN
    INSERT INTO retalk_mailboxes(recipient, sender, count, bytes)
    VALUES(ifnull(NEW.recipient, ''), ifnull(NEW.sender, ''), 1,
           ifnull(length(CAST(NEW.body AS BLOB)), 0))
    ON CONFLICT(recipient, sender) DO UPDATE SET
        count = count + 1, bytes = bytes + excluded.bytes;
    INSERT INTO retalk_mailbox_totals(recipient, count, bytes)
    VALUES(ifnull(NEW.recipient, ''), 1, ifnull(length(CAST(NEW.body AS BLOB)), 0))
    ON CONFLICT(recipient) DO UPDATE SET
        count = count + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER retalk_mailboxes_out AFTER DELETE ON messages BEGIN
    UPDATE retalk_mailboxes
        SET count = count - 1, bytes = bytes - ifnull(length(CAST(OLD.body AS BLOB)), 0)
        WHERE recipient = ifnull(OLD.recipient, '') AND sender = ifnull(OLD.sender, '');
    DELETE FROM retalk_mailboxes
        WHERE recipient = ifnull(OLD.recipient, '') AND sender = ifnull(OLD.sender, '')
          AND count <= 0;
    UPDATE retalk_mailbox_totals
        SET count = count - 1, bytes = bytes - ifnull(length(CAST(OLD.body AS BLOB)), 0)
        WHERE recipient = ifnull(OLD.recipient, '');
    DELETE FROM retalk_mailbox_totals
        WHERE recipient = ifnull(OLD.recipient, '') AND count <= 0;
END;
PRAGMA user_version=3;
";

/// A file from a schema-3 relay (per-sender counts and totals in tables)
/// moves to the current schema (4 dropped the per-sender table; 5 changed
/// only the nonces; 6 dropped the totals): the tables and their triggers
/// go, and the caps still count the mail stored before (counted from the
/// messages themselves, also after a restart) through sends and reads.
#[tokio::test]
async fn a_schema_3_file_keeps_its_caps_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_mailbox = 4;
    cfg.max_mailbox_per_sender = 2;
    let relay = Relay::start(cfg.clone()).await.unwrap();
    let r = TestRelay {
        relay,
        dir,
        http: client(),
    };
    let (alice, _) = r.user(0).await;
    let (carol, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "1")).await;
    r.ok(&alice, &send_req(&bob_id, "2")).await;
    r.ok(&carol, &send_req(&bob_id, "3")).await;
    let TestRelay { relay, dir, http } = r;
    relay.shutdown().await;
    let db = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
    db.execute_batch(SCHEMA_3).unwrap();
    drop(db);
    let relay = Relay::start(cfg.clone()).await.unwrap();
    let r = TestRelay { relay, dir, http };
    // alice's two are counted; carol has room for one more.
    let (status, body) = r.call(&alice, &send_req(&bob_id, "4")).await;
    assert_eq!(status, 429, "{body}");
    assert!(error_text(&body).contains("per-sender cap 2"), "{body}");
    r.ok(&carol, &send_req(&bob_id, "5")).await;
    // The mailbox total (4) is reached too.
    let (dave, _) = r.user(0).await;
    let (status, body) = r.call(&dave, &send_req(&bob_id, "6")).await;
    assert_eq!(status, 429, "{body}");
    assert!(error_text(&body).contains("cap 4"), "{body}");
    let db = rusqlite::Connection::open(r.dir.path().join("server.db")).unwrap();
    let (version, old, triggers): (i64, i64, i64) = db
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
             (SELECT COUNT(*) FROM sqlite_master \
                WHERE name IN ('retalk_mailboxes', 'retalk_mailbox_totals')), \
             (SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(version, 6, "the current schema");
    assert_eq!(old, 0, "the per-sender and totals tables are gone");
    assert_eq!(triggers, 0, "and their triggers");
    drop(db);
    // Reading alice's mail frees her share at once, and after a restart the
    // counts are taken again from what is left.
    r.ok(
        &bob,
        &ReadMessages {
            peer: Some(id_of(&alice)),
            ..Default::default()
        },
    )
    .await;
    r.ok(&alice, &send_req(&bob_id, "7")).await;
    let TestRelay { relay, dir, http } = r;
    relay.shutdown().await;
    let relay = Relay::start(cfg).await.unwrap();
    let r = TestRelay { relay, dir, http };
    r.ok(&alice, &send_req(&bob_id, "8")).await;
    let (status, body) = r.call(&alice, &send_req(&bob_id, "9")).await;
    assert_eq!(status, 429, "{body}");
    let db = rusqlite::Connection::open(r.dir.path().join("server.db")).unwrap();
    let waiting: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE recipient = ?1",
            [bob_id.as_str()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(waiting, 4, "carol's 3 and 5, alice's 7 and 8: the cap of 4");
}

fn age_everything(dir: &tempfile::TempDir, table: &str, secs: f64) {
    let db = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
    db.busy_timeout(PATIENCE).unwrap();
    db.execute(&format!("UPDATE {table} SET ts = ts - ?1"), [secs])
        .unwrap();
}

/// Undelivered mail past --message-ttl is deleted; 0 keeps it.
#[tokio::test]
async fn undelivered_mail_expires() {
    for (ttl, kept) in [(3600u64, 1usize), (0, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.message_ttl = std::time::Duration::from_secs(ttl);
        let relay = Relay::start(cfg.clone()).await.unwrap();
        let r = TestRelay {
            relay,
            dir,
            http: client(),
        };
        let (alice, _) = r.user(0).await;
        let (bob, bob_id) = r.user(0).await;
        r.ok(&alice, &send_req(&bob_id, "old")).await;
        let TestRelay { relay, dir, http } = r;
        relay.shutdown().await;
        age_everything(&dir, "messages", 7200.0);
        let relay = Relay::start(cfg).await.unwrap();
        let r = TestRelay { relay, dir, http };
        r.ok(&alice, &send_req(&bob_id, "young")).await;
        let mail = r.ok(&bob, &ReadMessages::default()).await;
        let mail = mail.as_array().unwrap();
        assert_eq!(mail.len(), kept, "ttl {ttl}: {mail:?}");
        assert_eq!(
            mail.last().unwrap()["body"],
            send_req(&bob_id, "young").body
        );
        // The mailbox is empty again (the read took what expiry left).
        let db = rusqlite::Connection::open(r.dir.path().join("server.db")).unwrap();
        let left: i64 = db
            .query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}

fn nack_of(signer: &KeyPairSigner, body: &str) -> Nack {
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    let me = id_of(signer);
    let sig = signer.sign(Nack::signed_text(me.as_str(), &hash).as_bytes());
    Nack {
        hash,
        sig: STANDARD_NO_PAD.encode(sig),
    }
}

/// A new refusal prunes the expired ones at once (0.3.0's test_sync).
#[tokio::test]
async fn a_new_nack_prunes_expired_refusals() {
    let r = start_with(|c| c.refused_ttl = std::time::Duration::from_secs(3600)).await;
    let (bob, _) = r.user(0).await;
    r.ok(&bob, &nack_of(&bob, "first")).await;
    age_everything(&r.dir, "refused", 7200.0);
    r.ok(&bob, &nack_of(&bob, "second")).await;
    let db = rusqlite::Connection::open(r.dir.path().join("server.db")).unwrap();
    let hashes: Vec<String> = db
        .prepare("SELECT hash FROM refused")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hashes, vec![nack_of(&bob, "second").hash]);
}
