//! API keys and `/admin` on PostgreSQL: the keys live in the shared
//! database, so a key minted on one replica opens the other, and a key
//! disabled or deleted on one is refused by the other.

use std::time::{Duration, Instant};

use retalk::proto::tools::CountKeys;
use retalk::proto::{build_request, Dialect, KeyPairSigner};
use retalk_testkit::*;
use serde_json::{json, Value};

const AUDIENCE: &str = "http://relay.test";
const PW: &str = "hunter2";

async fn replica(url: &str) -> TestRelay {
    let url = url.to_owned();
    start_with(move |c| {
        c.postgres = Some(url);
        c.audiences = vec![AUDIENCE.into()];
        c.admin_password = Some(PW.into());
        c.require_api_key = true;
    })
    .await
}

async fn admin(r: &TestRelay, body: Value) -> (u16, Value) {
    let resp = r
        .http
        .post(format!("{}/admin", r.addr()))
        .basic_auth("admin", Some(PW))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The status of a signed call carrying `key` (or none).
async fn call(r: &TestRelay, signer: &KeyPairSigner, key: Option<&str>) -> u16 {
    let body = build_request(&CountKeys, signer, AUDIENCE, Dialect::Both, now()).unwrap();
    let mut req = r.http.post(r.addr()).body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Polls (bounded by PATIENCE) until a call with `key` on `r` answers
/// `status`; how long that took.
async fn until_status(r: &TestRelay, key: &str, status: u16, what: &str) -> Duration {
    let signer = KeyPairSigner::random();
    let start = Instant::now();
    loop {
        let got = call(r, &signer, Some(key)).await;
        if got == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: still {got} after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_shared_by_the_replicas_and_a_disabled_key_is_refused_by_both() {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let a = replica(&url).await;
    let b = replica(&url).await;
    let someone = KeyPairSigner::random();
    assert_eq!(call(&a, &someone, None).await, 401);
    assert_eq!(call(&b, &someone, None).await, 401);

    let (status, created) = admin(&a, json!({"action": "create", "label": "<alice>"})).await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let hash = created["key_hash"].as_str().unwrap().to_owned();
    // The replica that minted it takes it at once; the other once told.
    assert_eq!(call(&a, &someone, Some(&key)).await, 200);
    let took = until_status(&b, &key, 200, "a key minted on A, used on B").await;
    eprintln!("key minted on A accepted by B after {took:?}");
    assert_eq!(call(&b, &someone, Some("not-a-key")).await, 401);

    // Both list it, from the one table.
    let (_, listed) = admin(&b, json!({"action": "list"})).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["keys"][0]["key_hash"], hash.as_str());
    assert_eq!(listed["keys"][0]["label"], "<alice>");
    assert_eq!(listed["keys"][0]["disabled"], false);

    // Disabled on B: refused by B at once and by A once told.
    let (status, v) = admin(&b, json!({"action": "disable", "key_hash": hash})).await;
    assert_eq!((status, &v), (200, &json!({"updated": 1})));
    assert_eq!(call(&b, &someone, Some(&key)).await, 401);
    let took = until_status(&a, &key, 401, "a key disabled on B, used on A").await;
    eprintln!("key disabled on B refused by A after {took:?}");
    let (_, listed) = admin(&a, json!({"action": "list"})).await;
    assert_eq!(listed["keys"][0]["disabled"], true, "{listed}");

    // Enabled on A, deleted on A: B follows both.
    admin(&a, json!({"action": "enable", "key_hash": hash})).await;
    until_status(&b, &key, 200, "a key enabled again on A, used on B").await;
    let (status, v) = admin(&a, json!({"action": "delete", "key_hash": hash})).await;
    assert_eq!((status, &v), (200, &json!({"deleted": 1})));
    until_status(&b, &key, 401, "a key deleted on A, used on B").await;

    // The page shows what the table holds, escaped.
    admin(
        &a,
        json!({"action": "create", "label": "<script>x</script>"}),
    )
    .await;
    let page = b
        .http
        .get(format!("{}/admin", b.addr()))
        .basic_auth("admin", Some(PW))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script>x"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_later_accepts_existing_keys_at_once() {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let a = replica(&url).await;
    let (_, created) = admin(&a, json!({"action": "create"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    // Stored hashed in the shared table, never raw.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query("SELECT key_hash FROM retalk_api_keys", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].get(0);
    assert_eq!(stored, created["key_hash"].as_str().unwrap());
    assert_ne!(stored, key);

    let b = replica(&url).await;
    assert_eq!(call(&b, &KeyPairSigner::random(), Some(&key)).await, 200);
    // Bad admin input is refused as on SQLite.
    let (status, v) = admin(&b, json!({"action": "fly"})).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = admin(&b, json!({"action": "disable"})).await;
    assert_eq!(status, 400, "{v}");
}
