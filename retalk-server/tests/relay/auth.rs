//! Signature checks through HTTP: the reference's vectors, replay (also
//! across a restart), freshness, audience, both field-name dialects.

use retalk::proto::tools::{CountKeys, ReadMessages};
use retalk::proto::{build_request, Dialect, KeyPairSigner};
use retalk_server::Relay;
use retalk_testkit::*;
use serde_json::{json, Value};

fn vectors() -> Value {
    let path = format!(
        "{}/../tests/data/vectors/signed_requests.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn vector_body(case: &Value) -> String {
    let mut args = case["args"].as_object().unwrap().clone();
    args.insert("auth".into(), case["auth"].clone());
    json!({"tool": case["tool"], "args": args}).to_string()
}

fn vector_ts(case: &Value) -> i64 {
    case["auth"]["ts"].as_str().unwrap().parse().unwrap()
}

/// The reference's signed requests, sent as is to a relay whose clock is
/// set to when they were signed: valid ones pass the signature check (a
/// 404 for a peer that does not exist here is fine), invalid ones are
/// refused with the reason a reference client shows.
#[tokio::test]
async fn reference_vectors_through_http() {
    let v = vectors();
    let ts = vector_ts(&v["valid"][0]);
    let r = start_with(|c| {
        c.audiences = vec!["https://relay.example.com".into()];
        c.clock_offset_secs = ts - now();
    })
    .await;
    for case in v["valid"].as_array().unwrap() {
        assert_eq!(vector_ts(case), ts);
        let (status, body) = r.post_raw(vector_body(case)).await;
        let tool = case["tool"].as_str().unwrap();
        match tool {
            "get_keys" | "claim_key" | "send_message" => {
                assert_eq!(status, 404, "{tool}: {body}");
            }
            _ => assert_eq!(status, 200, "{tool}: {body}"),
        }
    }
    for case in v["invalid"].as_array().unwrap() {
        let why = case["why"].as_str().unwrap();
        // Each case on a fresh relay whose audience is the case's (a case
        // may reuse a valid one's nonce).
        let r = start_with(|c| {
            c.audiences = vec![case["audience"].as_str().unwrap().to_owned()];
            c.clock_offset_secs = vector_ts(case) - now();
        })
        .await;
        let (status, body) = r.post_raw(vector_body(case)).await;
        let text = error_text(&body);
        if why.contains("another tool") {
            // read_messages carrying send_message's arguments: refused
            // before the signature is even looked at.
            assert_eq!(status, 400, "{why}: {body}");
        } else if why.contains("fingerprint") || why.contains("user_id is not") {
            assert_eq!(status, 401, "{why}");
            assert_eq!(text, "auth keys do not hash to user_id", "{why}");
        } else {
            assert_eq!(status, 401, "{why}");
            assert_eq!(
                text, "bad signature (wrong key, audience, or argument canonicalization)",
                "{why}"
            );
        }
    }
}

/// A valid vector replayed: refused, and nothing happens twice.
#[tokio::test]
async fn replayed_request_is_refused_and_changes_nothing() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let body = build_request(
        &send_req(&bob_id, "once"),
        &alice,
        &r.url(),
        Dialect::Both,
        now(),
    )
    .unwrap();
    let (status, _) = r.post_raw(body.clone()).await;
    assert_eq!(status, 200);
    let (status, answer) = r.post_raw(body).await;
    assert_eq!(status, 401);
    assert_eq!(error_text(&answer), "replay detected: nonce already used");
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1);
}

/// Nonces are stored with the request's effect, in the same commit, so a
/// restarted relay still refuses a request it already served.
#[tokio::test]
async fn replay_is_refused_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let audience = "http://relay.test".to_owned();
    let cfg = || {
        let mut c = config(dir.path());
        c.audiences = vec![audience.clone()];
        c
    };
    let signer = KeyPairSigner::random();
    let body = build_request(&CountKeys, &signer, &audience, Dialect::Both, now()).unwrap();
    let http = client();

    let relay = Relay::start(cfg()).await.unwrap();
    let (status, _) = post_raw(
        &http,
        &format!("http://{}", relay.local_addr()),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    relay.shutdown().await;

    let relay = Relay::start(cfg()).await.unwrap();
    let (status, answer) = post_raw(&http, &format!("http://{}", relay.local_addr()), body).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(error_text(&answer), "replay detected: nonce already used");
    relay.shutdown().await;
}

#[tokio::test]
async fn timestamps_outside_150_seconds_are_refused() {
    let r = start().await;
    let signer = KeyPairSigner::random();
    // Margins of 10 s either side, so a slow machine cannot move a case
    // across the boundary between signing and checking.
    for (skew, ok) in [(-140, true), (140, true), (-160, false), (160, false)] {
        let body =
            build_request(&CountKeys, &signer, &r.url(), Dialect::Both, now() + skew).unwrap();
        let (status, answer) = r.post_raw(body).await;
        if ok {
            assert_eq!(status, 200, "skew {skew}: {answer}");
        } else {
            assert_eq!(status, 401, "skew {skew}");
            assert_eq!(
                error_text(&answer),
                "stale or future timestamp (check the clock)"
            );
        }
    }
}

#[tokio::test]
async fn audience_must_be_one_of_the_relays() {
    let r = start_with(|c| {
        c.audiences = vec!["https://new.example".into(), "https://old.example".into()];
    })
    .await;
    assert_eq!(r.relay.url(), "https://new.example");
    assert_eq!(r.relay.audiences().len(), 2);
    let signer = KeyPairSigner::random();
    let addr = format!("http://{}", r.relay.local_addr());
    for (aud, ok) in [
        ("https://new.example", true),
        ("https://old.example", true),
        ("https://new.example/", false),
        ("https://evil.example", false),
    ] {
        let body = build_request(&CountKeys, &signer, aud, Dialect::Both, now()).unwrap();
        let (status, answer) = post_raw(&r.http, &addr, body).await;
        assert_eq!(status == 200, ok, "{aud}: {answer}");
        if !ok {
            assert!(error_text(&answer).starts_with("bad signature"), "{answer}");
        }
    }
}

#[tokio::test]
async fn default_audience_is_the_bound_address() {
    let r = start().await;
    assert_eq!(
        r.relay.url(),
        format!("http://127.0.0.1:{}", r.relay.local_addr().port())
    );
}

#[tokio::test]
async fn both_field_name_dialects_are_accepted() {
    let r = start().await;
    let signer = KeyPairSigner::random();
    for dialect in [Dialect::V001, Dialect::V03, Dialect::Both] {
        let (status, body) = r.call_as(&signer, &CountKeys, dialect).await;
        assert_eq!(status, 200, "{dialect:?}: {body}");
    }
}

#[tokio::test]
async fn auth_refusals_name_the_cause() {
    let r = start().await;
    let signer = KeyPairSigner::random();
    let other = KeyPairSigner::random();
    let good = build_request(&CountKeys, &signer, &r.url(), Dialect::V001, now()).unwrap();
    let good: Value = serde_json::from_slice(&good).unwrap();
    let with_auth = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut req = good.clone();
        edit(req["args"]["auth"].as_object_mut().unwrap());
        req.to_string()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (
            json!({"tool": "count_keys", "args": {}}).to_string(),
            401,
            "missing auth",
        ),
        (with_auth(&|a| drop(a.remove("nonce"))), 401, "nonce"),
        (with_auth(&|a| drop(a.remove("sig"))), 401, "sig"),
        (with_auth(&|a| drop(a.remove("ts"))), 401, "ts"),
        (
            with_auth(&|a| drop(a.remove("signing_key"))),
            401,
            "signing_key",
        ),
        (
            with_auth(&|a| {
                a.insert("signing_key".into(), "not base64!".into());
            }),
            401,
            "signing_key",
        ),
        (
            with_auth(&|a| {
                a.insert("identity_key".into(), "QUJD".into());
            }),
            401,
            "identity_key",
        ),
        (
            with_auth(&|a| {
                a.insert("nonce".into(), "XYZ".into());
            }),
            401,
            "nonce",
        ),
        (
            with_auth(&|a| {
                a.insert("ts".into(), "yesterday".into());
            }),
            401,
            "ts",
        ),
        (
            with_auth(&|a| {
                a.insert("sig".into(), "AAAA".into());
            }),
            401,
            "sig",
        ),
        // Extreme timestamps are stale, not an arithmetic overflow.
        (
            with_auth(&|a| {
                a.insert("ts".into(), i64::MIN.to_string().into());
            }),
            401,
            "stale",
        ),
        (
            with_auth(&|a| {
                a.insert("ts".into(), i64::MAX.to_string().into());
            }),
            401,
            "stale",
        ),
        (
            with_auth(&|a| {
                a.insert("user_id".into(), id_of(&other).to_string().into());
            }),
            401,
            "auth keys do not hash to user_id",
        ),
        (
            with_auth(&|a| {
                a.insert("signing_key".into(), signing_key_of(&other).into());
            }),
            401,
            "auth keys do not hash to user_id",
        ),
        (
            json!({"tool": "count_keys", "args": {"auth": "me"}}).to_string(),
            401,
            "auth must be an object",
        ),
    ];
    for (body, want_status, want_text) in cases {
        let (status, answer) = r.post_raw(body.clone()).await;
        assert_eq!(status, want_status, "{body}: {answer}");
        assert!(
            error_text(&answer).contains(want_text),
            "{body}: {answer} should mention {want_text}"
        );
    }
}

fn signing_key_of(s: &KeyPairSigner) -> String {
    use retalk::proto::RequestSigner;
    s.signing_key()
}
