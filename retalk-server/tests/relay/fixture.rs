//! A `server.db` written by the Python reference (0.0.1) opens as is and
//! serves its pending message to the recipient, who can decrypt it.

use base64::Engine;
use retalk::proto::tools::{CountKeys, ReadMessages};
use retalk::proto::Dialect;
use retalk_server::{Config, Relay};
use retalk_testkit::OlmSigner;
use retalk_testkit::*;
use rusqlite::Connection;
use serde_json::Value;
use sha2::{Digest, Sha256};
use vodozemac::olm::{Account, AccountPickle, OlmMessage, Session, SessionPickle};

pub(super) const ALICE: &str = "bbb95d3f29e2d465d3b2d7fca249a618";
const BOB: &str = "74f08d81574a13722f7242d98bbc9c0e";

pub(super) fn fixture(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/fixture-0.0.1")
        .join(path)
}

pub(super) fn bob_store() -> (Account, Session) {
    let key: [u8; 32] = Sha256::digest(b"bob-secret").into();
    let db = Connection::open(fixture("bob/store.db")).unwrap();
    let account: String = db
        .query_row("SELECT v FROM meta WHERE k='account'", [], |r| r.get(0))
        .unwrap();
    let session: String = db
        .query_row("SELECT blob FROM sessions WHERE peer=?1", [ALICE], |r| {
            r.get(0)
        })
        .unwrap();
    let account = Account::from_pickle(AccountPickle::from_encrypted(&account, &key).unwrap());
    let session = Session::from_pickle(SessionPickle::from_encrypted(&session, &key).unwrap());
    (account, session)
}

fn columns(db: &Connection, table: &str) -> Vec<(String, String)> {
    let mut stmt = db
        .prepare(&format!(
            "SELECT name, type FROM pragma_table_info('{table}')"
        ))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn reference_database_serves_bobs_pending_message() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("server.db");
    std::fs::copy(fixture("server.db"), &db_path).unwrap();
    let before = Connection::open(&db_path).unwrap();
    let tables = ["users", "otks", "messages", "nonces"];
    let schema_before: Vec<_> = tables.iter().map(|t| columns(&before, t)).collect();
    drop(before);

    let relay = Relay::start(Config {
        port: 0,
        db: db_path.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (bob, mut session) = bob_store();
    assert_eq!(id_of(&OlmSigner(&bob)).as_str(), BOB);
    let http = client();
    let addr = format!("http://{}", relay.local_addr());
    let call = |tool: &dyn Fn() -> Vec<u8>| {
        let (http, addr) = (http.clone(), addr.clone());
        let body = tool();
        async move { post_raw(&http, &addr, body).await }
    };

    // The reference's users and keys are there: Bob's key count reads.
    let (status, counts) = call(&|| {
        retalk::proto::build_request(
            &CountKeys,
            &OlmSigner(&bob),
            &relay.url(),
            Dialect::V001,
            now(),
        )
        .unwrap()
    })
    .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["has_fallback"], true);

    let (status, mail) = call(&|| {
        retalk::proto::build_request(
            &ReadMessages::default(),
            &OlmSigner(&bob),
            &relay.url(),
            Dialect::V001,
            now(),
        )
        .unwrap()
    })
    .await;
    assert_eq!(status, 200, "{mail}");
    let mail = mail.as_array().unwrap();
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &mail[0];
    assert_eq!(m["from"], ALICE);
    assert_eq!(m["mtype"], 1);

    // The body is intact: Bob's own session decrypts it to Alice's text.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(m["body"].as_str().unwrap())
        .unwrap();
    let msg = OlmMessage::from_parts(1, &bytes).unwrap();
    let plain = session.decrypt(&msg).unwrap();
    let envelope: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(envelope["kind"], "msg");
    assert_eq!(
        envelope["text"],
        "pending: left on the relay for the new implementation"
    );

    // Delivered means gone.
    let (_, again) = call(&|| {
        retalk::proto::build_request(
            &ReadMessages::default(),
            &OlmSigner(&bob),
            &relay.url(),
            Dialect::V001,
            now(),
        )
        .unwrap()
    })
    .await;
    assert_eq!(again, serde_json::json!([]));
    relay.shutdown().await;

    // The reference's tables and columns are unchanged (we only add
    // indexes and the 0.3.x tables).
    let after = Connection::open(&db_path).unwrap();
    let schema_after: Vec<_> = tables.iter().map(|t| columns(&after, t)).collect();
    assert_eq!(schema_before, schema_after);
    assert!(!columns(&after, "refused").is_empty());
}
