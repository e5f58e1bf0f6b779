//! Admission (issue 15): 0.3.0-compatible API keys and /admin, and rate
//! limits keyed on the verified caller, plus per-address limits on what
//! fails verification.

use std::net::IpAddr;

use retalk::proto::tools::CountKeys;
use retalk::proto::{build_request, Dialect, KeyPairSigner};
use retalk_testkit::*;
use serde_json::{json, Value};

/// A client whose connections come from `ip` (any 127.x address is local).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Option<String>, Value) {
    let resp = http.post(url).body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap())
}

/// A request naming `victim`'s id and keys but signed by someone else.
fn forged(victim: &KeyPairSigner, audience: &str) -> Vec<u8> {
    let mallory = KeyPairSigner::random();
    let mut v: Value = serde_json::from_slice(
        &build_request(&CountKeys, &mallory, audience, Dialect::Both, now()).unwrap(),
    )
    .unwrap();
    let real: Value = serde_json::from_slice(
        &build_request(&CountKeys, victim, audience, Dialect::Both, now()).unwrap(),
    )
    .unwrap();
    for f in ["user_id", "fingerprint", "identity_key", "signing_key"] {
        v["args"]["auth"][f] = real["args"]["auth"][f].clone();
    }
    v.to_string().into_bytes()
}

#[tokio::test]
async fn the_user_limit_counts_only_what_the_caller_signed() {
    let r = start_with(|c| c.rate_limit = 3).await;
    let url = r.addr();
    let victim = KeyPairSigner::random();
    let other = KeyPairSigner::random();
    let attacker = client_from("127.0.0.2");
    let good = client_from("127.0.0.1");
    // Forgeries in the victim's name are refused and cost the victim nothing
    // (0.3.0 counted them against the named fingerprint).
    for _ in 0..2 {
        let (status, _, _) = post(&attacker, &url, forged(&victim, &r.url())).await;
        assert_eq!(status, 401);
    }
    for _ in 0..3 {
        let body = build_request(&CountKeys, &victim, &r.url(), Dialect::Both, now()).unwrap();
        let (status, _, v) = post(&good, &url, body).await;
        assert_eq!(status, 200, "{v}");
    }
    let body = build_request(&CountKeys, &victim, &r.url(), Dialect::Both, now()).unwrap();
    let (status, retry, v) = post(&good, &url, body).await;
    assert_eq!(status, 429, "{v}");
    assert!(error_text(&v).starts_with("rate limit exceeded"), "{v}");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=20).contains(&secs), "{secs}");
    // Someone else, from the same address, has a budget of their own.
    let body = build_request(&CountKeys, &other, &r.url(), Dialect::Both, now()).unwrap();
    assert_eq!(post(&good, &url, body).await.0, 200);
}

#[tokio::test]
async fn an_address_sending_bad_signatures_is_slowed_and_others_are_not() {
    let r = start_with(|c| c.rate_limit = 3).await;
    let url = r.addr();
    let victim = KeyPairSigner::random();
    let attacker = client_from("127.0.0.2");
    let good = client_from("127.0.0.3");
    for _ in 0..4 {
        post(&attacker, &url, forged(&victim, &r.url())).await;
    }
    // Now even a valid request from that address waits...
    let mallory = KeyPairSigner::random();
    let body = build_request(&CountKeys, &mallory, &r.url(), Dialect::Both, now()).unwrap();
    let (status, retry, v) = post(&attacker, &url, body).await;
    assert_eq!(status, 429, "{v}");
    assert!(retry.is_some());
    // ...garbage too (refused before parsing)...
    assert_eq!(post(&attacker, &url, b"junk".to_vec()).await.0, 429);
    // ...and nobody else does.
    let body = build_request(&CountKeys, &victim, &r.url(), Dialect::Both, now()).unwrap();
    assert_eq!(post(&good, &url, body).await.0, 200);
}

#[tokio::test]
async fn without_a_limit_nothing_is_counted() {
    let r = start().await;
    let s = KeyPairSigner::random();
    for _ in 0..50 {
        r.ok(&s, &CountKeys).await;
    }
}

async fn admin(
    http: &reqwest::Client,
    url: &str,
    pw: Option<&str>,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = http.post(format!("{url}/admin")).body(body.to_string());
    if let Some(pw) = pw {
        req = req.basic_auth("admin", Some(pw));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap(), headers)
}

#[tokio::test]
async fn admin_is_not_there_unless_configured() {
    let r = start().await;
    let (status, v, _) = admin(&r.http, &r.addr(), Some("x"), json!({"action": "list"})).await;
    assert_eq!(status, 404, "{v}");
    let resp = r
        .http
        .get(format!("{}/admin", r.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

async fn call_with_key(
    r: &TestRelay,
    signer: &KeyPairSigner,
    header: Option<(&str, String)>,
) -> u16 {
    let body = build_request(&CountKeys, signer, &r.url(), Dialect::Both, now()).unwrap();
    let mut req = r.http.post(r.addr()).body(body);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn api_keys_gate_the_relay_and_admin_manages_them() {
    let r = start_with(|c| {
        c.admin_password = Some("hunter2".into());
        c.require_api_key = true;
    })
    .await;
    let url = r.addr();
    // Wrong or missing password: 401 with a Basic challenge.
    for pw in [None, Some("wrong")] {
        let (status, v, headers) = admin(&r.http, &url, pw, json!({"action": "list"})).await;
        assert_eq!(status, 401, "{v}");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
    }
    let pw = Some("hunter2");
    let (status, created, _) = admin(
        &r.http,
        &url,
        pw,
        json!({"action": "create", "label": "<b>alice</b>"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let hash = created["key_hash"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 43, "32 random bytes, base64url");
    assert_eq!(
        hash,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()))
    );
    let (_, listed, _) = admin(&r.http, &url, pw, json!({"action": "list"})).await;
    assert_eq!(listed["keys"][0]["key_hash"], hash.as_str());
    assert_eq!(listed["keys"][0]["disabled"], false);
    assert!(
        !listed.to_string().contains(&key),
        "the raw key is shown only once"
    );

    let s = KeyPairSigner::random();
    assert_eq!(call_with_key(&r, &s, None).await, 401);
    assert_eq!(
        call_with_key(&r, &s, Some(("authorization", "Bearer nope".into()))).await,
        401
    );
    assert_eq!(
        call_with_key(&r, &s, Some(("authorization", format!("Bearer {key}")))).await,
        200
    );
    assert_eq!(
        call_with_key(&r, &s, Some(("x-retalk-key", key.clone()))).await,
        200
    );

    let (_, v, _) = admin(
        &r.http,
        &url,
        pw,
        json!({"action": "disable", "key_hash": hash}),
    )
    .await;
    assert_eq!(v, json!({"updated": 1}));
    assert_eq!(
        call_with_key(&r, &s, Some(("x-retalk-key", key.clone()))).await,
        401
    );
    admin(
        &r.http,
        &url,
        pw,
        json!({"action": "enable", "key_hash": hash}),
    )
    .await;
    assert_eq!(
        call_with_key(&r, &s, Some(("x-retalk-key", key.clone()))).await,
        200
    );

    // The page lists it, with the label escaped.
    let page = r
        .http
        .get(format!("{url}/admin"))
        .basic_auth("admin", pw)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&hash) && page.contains("&lt;b&gt;alice"),
        "{page}"
    );
    assert!(!page.contains("<b>alice"));

    let (_, v, _) = admin(
        &r.http,
        &url,
        pw,
        json!({"action": "delete", "key_hash": hash}),
    )
    .await;
    assert_eq!(v, json!({"deleted": 1}));
    assert_eq!(
        call_with_key(&r, &s, Some(("x-retalk-key", key))).await,
        401
    );
    let (status, v, _) = admin(&r.http, &url, pw, json!({"action": "fly"})).await;
    assert_eq!(status, 400);
    assert!(error_text(&v).contains("unknown admin action"), "{v}");
}

/// Keys survive a restart (they live in the database, hashed).
#[tokio::test]
async fn keys_are_kept_hashed_in_the_database() {
    let r = start_with(|c| c.admin_password = Some("pw".into())).await;
    let (_, created, _) = admin(&r.http, &r.addr(), Some("pw"), json!({"action": "create"})).await;
    let key = created["key"].as_str().unwrap();
    let db = rusqlite::Connection::open(r.dir.path().join("server.db")).unwrap();
    let stored: String = db
        .query_row("SELECT key_hash FROM api_keys", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, created["key_hash"].as_str().unwrap());
    assert_ne!(stored, key);
}
