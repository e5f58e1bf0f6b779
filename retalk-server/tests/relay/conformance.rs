//! One storage conformance suite, run against every backend: the same
//! tool sequences over HTTP on a relay on SQLite and on a relay on a real
//! PostgreSQL (started by `retalk_testkit::postgres`; required, never
//! skipped). Each case is a plain async fn over a started relay; the
//! `conformance!` macro makes one test per case and backend.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use retalk::proto::tools::{ClaimKey, CountKeys, GetKeys, Nack, ReadMessages};
use retalk::proto::{KeyPairSigner, RequestSigner, UserId};
use retalk_server::Config;
use retalk_testkit::*;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A relay on SQLite (a temp file).
pub async fn sqlite(tweak: impl FnOnce(&mut Config)) -> TestRelay {
    start_with(tweak).await
}

/// A relay on a fresh database of the shared test PostgreSQL.
pub async fn postgres(tweak: impl FnOnce(&mut Config)) -> TestRelay {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    start_with(move |c| {
        c.postgres = Some(url);
        tweak(c)
    })
    .await
}

macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(|tweak| Box::pin(super::$backend(tweak))).await;
                }
            )*
        }
    };
}

/// How a case starts its relay: with settings changed by the closure.
type Start = fn(
    Box<dyn FnOnce(&mut Config) + Send>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = TestRelay> + Send>>;

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        conformance!(sqlite: $($case),*);
        conformance!(postgres: $($case),*);
    };
}

suite!(
    publish_count_get_claim,
    send_read_peek_ack,
    nack_refuses_that_body,
    replays_are_refused,
    mailbox_caps_hold,
    one_time_key_cap_holds,
    a_waiting_read_is_woken_by_a_send,
    concurrent_claims_hand_out_each_key_once,
);

fn plain() -> Box<dyn FnOnce(&mut Config) + Send> {
    Box::new(|_| {})
}

async fn publish_count_get_claim(start: Start) {
    let r = start(plain()).await;
    let (alice, _) = r.user(0).await;
    let bob = KeyPairSigner::random();
    let bob_id = id_of(&bob);
    assert_eq!(
        r.ok(&bob, &CountKeys).await,
        serde_json::json!({"unclaimed": 0, "has_fallback": false})
    );
    let out = r.ok(&bob, &publish_req(&bob, 3, true)).await;
    assert_eq!(out["one_time_keys_added"], 3);
    assert_eq!(
        r.ok(&bob, &CountKeys).await,
        serde_json::json!({"unclaimed": 3, "has_fallback": true})
    );
    let keys = r
        .ok(
            &alice,
            &GetKeys {
                peer: bob_id.clone(),
            },
        )
        .await;
    assert_eq!(keys["identity_key"], bob.identity_key());
    assert_eq!(keys["signing_key"], bob.signing_key());
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let k = r
            .ok(
                &alice,
                &ClaimKey {
                    peer: bob_id.clone(),
                },
            )
            .await;
        assert_eq!(k["fallback"], false, "{k}");
        assert!(
            seen.insert(k["key_id"].to_string()),
            "handed out twice: {k}"
        );
    }
    let k = r
        .ok(
            &alice,
            &ClaimKey {
                peer: bob_id.clone(),
            },
        )
        .await;
    assert_eq!(k["fallback"], true, "{k}");
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 0);
    let stranger = UserId::parse(&"0".repeat(32), "p").unwrap();
    let (status, body) = r.call(&alice, &ClaimKey { peer: stranger }).await;
    assert_eq!(status, 404, "{body}");
}

async fn send_read_peek_ack(start: Start) {
    let r = start(plain()).await;
    let (alice, alice_id) = r.user(0).await;
    let (carol, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let first = r.ok(&alice, &send_req(&bob_id, "one")).await;
    r.ok(&alice, &send_req(&bob_id, "two")).await;
    r.ok(&carol, &send_req(&bob_id, "three")).await;
    let peek = ReadMessages {
        peek: true,
        ..Default::default()
    };
    for _ in 0..2 {
        let mail = r.ok(&bob, &peek).await;
        assert_eq!(mail.as_array().unwrap().len(), 3, "{mail}");
    }
    assert_eq!(
        r.ok(&bob, &peek).await[0]["message_id"],
        first["message_id"]
    );
    // Only Alice's, deleted; Carol's stays.
    let from_alice = ReadMessages {
        peer: Some(alice_id.clone()),
        ..Default::default()
    };
    let mail = r.ok(&bob, &from_alice).await;
    let mail = mail.as_array().unwrap();
    assert_eq!(mail.len(), 2);
    assert!(mail.iter().all(|m| m["from"] == alice_id.as_str()));
    assert!(mail[0]["message_id"].as_i64() < mail[1]["message_id"].as_i64());
    let rest = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(
        r.ok(&bob, &ReadMessages::default()).await,
        serde_json::json!([])
    );
    let stranger = UserId::parse(&"0".repeat(32), "p").unwrap();
    let (status, _) = r.call(&alice, &send_req(&stranger, "x")).await;
    assert_eq!(status, 404);
}

fn nack_for(signer: &KeyPairSigner, body_b64: &str) -> Nack {
    let hash = hex::encode(Sha256::digest(body_b64.as_bytes()));
    let me = id_of(signer);
    let sig = signer.sign(Nack::signed_text(me.as_str(), &hash).as_bytes());
    Nack {
        hash,
        sig: STANDARD_NO_PAD.encode(sig),
    }
}

async fn nack_refuses_that_body(start: Start) {
    let r = start(plain()).await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let msg = send_req(&bob_id, "unwanted");
    let nack = nack_for(&bob, &msg.body);
    assert_eq!(r.ok(&bob, &nack).await, serde_json::json!({"ok": true}));
    // Re-nacking refreshes, never duplicates.
    r.ok(&bob, &nack).await;
    let out = r.ok(&alice, &msg).await;
    assert_eq!(out["refused"], true);
    assert_eq!(out["hash"], nack.hash);
    assert_eq!(out["sig"], nack.sig);
    r.ok(&alice, &send_req(&bob_id, "wanted")).await;
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1);
}

async fn replays_are_refused(start: Start) {
    let r = start(plain()).await;
    let (alice, _) = r.user(0).await;
    let (_, bob_id) = r.user(0).await;
    let body = retalk::proto::build_request(
        &send_req(&bob_id, "once"),
        &alice,
        &r.url(),
        retalk::proto::Dialect::Both,
        now(),
    )
    .unwrap();
    let (status, out) = r.post_raw(body.clone()).await;
    assert_eq!(status, 200, "{out}");
    let (status, out) = r.post_raw(body).await;
    assert_eq!(status, 401, "{out}");
    assert!(error_text(&out).contains("replay"), "{out}");
}

async fn mailbox_caps_hold(start: Start) {
    let r = start(Box::new(|c| {
        c.max_mailbox = 3;
        c.max_mailbox_per_sender = 2;
    }))
    .await;
    let (alice, _) = r.user(0).await;
    let (carol, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "a1")).await;
    r.ok(&alice, &send_req(&bob_id, "a2")).await;
    let (status, out) = r.call(&alice, &send_req(&bob_id, "a3")).await;
    assert_eq!(status, 429, "{out}");
    assert!(error_text(&out).contains("for sender"), "{out}");
    r.ok(&carol, &send_req(&bob_id, "c1")).await;
    let (status, out) = r.call(&carol, &send_req(&bob_id, "c2")).await;
    assert_eq!(status, 429, "{out}");
    assert!(error_text(&out).contains("mailbox full"), "{out}");
    // Reading frees the room.
    assert_eq!(
        r.ok(&bob, &ReadMessages::default())
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    r.ok(&carol, &send_req(&bob_id, "c2")).await;
}

async fn one_time_key_cap_holds(start: Start) {
    let r = start(Box::new(|c| c.max_otks_per_user = 5)).await;
    let bob = KeyPairSigner::random();
    r.ok(&bob, &publish_req(&bob, 4, true)).await;
    let (status, out) = r.call(&bob, &publish_req(&bob, 2, false)).await;
    assert_eq!(status, 429, "{out}");
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 4);
}

async fn a_waiting_read_is_woken_by_a_send(start: Start) {
    let r = start(plain()).await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let wait = ReadMessages {
        wait: Some(30),
        ..Default::default()
    };
    let started = Instant::now();
    let (woken, _) = tokio::join!(r.ok(&bob, &wait), async {
        eventually("the read waits", || r.relay.waiting() == 1).await;
        r.ok(&alice, &send_req(&bob_id, "hello")).await
    });
    assert_eq!(woken.as_array().unwrap().len(), 1, "{woken}");
    assert!(started.elapsed() < Duration::from_secs(25));
}

async fn concurrent_claims_hand_out_each_key_once(start: Start) {
    let r = start(plain()).await;
    let (_, bob_id) = r.user(50).await;
    let claimers: Vec<KeyPairSigner> = (0..60).map(|_| KeyPairSigner::random()).collect();
    let claim = ClaimKey {
        peer: bob_id.clone(),
    };
    let claims = claimers.iter().map(|c| r.ok(c, &claim));
    let out = futures_util::future::join_all(claims).await;
    let keys: Vec<&serde_json::Value> = out.iter().filter(|k| k["fallback"] == false).collect();
    let ids: HashSet<String> = keys.iter().map(|k| k["key_id"].to_string()).collect();
    assert_eq!(ids.len(), keys.len(), "a one-time key was handed out twice");
    assert_eq!(keys.len(), 50, "every key handed out once");
}
