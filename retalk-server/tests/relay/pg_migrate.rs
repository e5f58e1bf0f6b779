//! `retalk-server migrate --from server.db --to postgres://...` with the
//! reference's 0.0.1 `server.db`: the real executable copies it, and a
//! relay on the PostgreSQL database then serves Bob the message Alice left
//! on the old relay, which Bob's own session decrypts.

use base64::Engine;
use retalk::proto::tools::{CountKeys, ReadMessages};
use retalk::proto::Dialect;
use retalk_testkit::OlmSigner;
use retalk_testkit::*;
use serde_json::Value;

use super::fixture::{bob_store, fixture, ALICE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_database_moves_to_postgres_with_its_pending_mail() {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    std::fs::copy(fixture("server.db"), &db).unwrap();
    let before = std::fs::read(&db).unwrap();

    let migrate = |db: &std::path::Path| {
        std::process::Command::new(relay_bin())
            .args(["migrate", "--from"])
            .arg(db)
            .args(["--to", &url])
            .output()
            .unwrap()
    };
    let out = migrate(&db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("2 users, 199 one-time keys, 1 messages"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the source is only read"
    );
    // A second copy into the same database is refused, not doubled.
    let again = migrate(&db);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds relay data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let r = start_with(move |c| c.postgres = Some(url)).await;
    let (bob, mut session) = bob_store();
    let signer = OlmSigner(&bob);
    let body = |tool: &dyn Fn(&str) -> Vec<u8>| tool(&r.url());
    let (status, counts) = r
        .post_raw(body(&|aud| {
            retalk::proto::build_request(&CountKeys, &signer, aud, Dialect::V001, now()).unwrap()
        }))
        .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["has_fallback"], true);
    let (status, mail) = r
        .post_raw(body(&|aud| {
            retalk::proto::build_request(
                &ReadMessages::default(),
                &signer,
                aud,
                Dialect::V001,
                now(),
            )
            .unwrap()
        }))
        .await;
    assert_eq!(status, 200, "{mail}");
    let mail = mail.as_array().unwrap();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["from"], ALICE);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(mail[0]["body"].as_str().unwrap())
        .unwrap();
    let msg = vodozemac::olm::OlmMessage::from_parts(1, &bytes).unwrap();
    let envelope: Value = serde_json::from_slice(&session.decrypt(&msg).unwrap()).unwrap();
    assert_eq!(
        envelope["text"],
        "pending: left on the relay for the new implementation"
    );
}

/// Our own SQLite file moves too, with the nonces of its last minutes
/// (recorded one row per group commit since schema 5): a request the old
/// relay served is a replay to the relay on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_served_before_the_move_is_a_replay_after_it() {
    use retalk::proto::{build_request, KeyPairSigner};
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audience = "http://relay.test".to_owned();
    let signer = KeyPairSigner::random();
    let body = build_request(&CountKeys, &signer, &audience, Dialect::Both, now()).unwrap();
    let http = client();

    let mut cfg = config(dir.path());
    cfg.audiences = vec![audience.clone()];
    let old = retalk_server::Relay::start(cfg).await.unwrap();
    let (status, answer) =
        post_raw(&http, &format!("http://{}", old.local_addr()), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    old.shutdown().await;

    let out = std::process::Command::new(relay_bin())
        .args(["migrate", "--from"])
        .arg(dir.path().join("server.db"))
        .args(["--to", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 nonces"), "{stderr}");

    let new = start_with(move |c| {
        c.postgres = Some(url);
        c.audiences = vec![audience];
    })
    .await;
    let (status, answer) = new.post_raw(body).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(error_text(&answer), "replay detected: nonce already used");
}
