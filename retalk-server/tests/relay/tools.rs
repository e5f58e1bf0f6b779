//! Every tool's happy path and refusals, through HTTP on a real relay.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use retalk::proto::tools::{
    ClaimKey, CountKeys, GetKeys, MessageType, Nack, ReadMessages, SendMessage,
};
use retalk::proto::{KeyPairSigner, RelayInfo, RequestSigner, UserId};
use retalk_testkit::*;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn publish_then_count_keys() {
    let r = start().await;
    let signer = KeyPairSigner::random();
    let me = id_of(&signer);

    let (status, body) = r.call(&signer, &CountKeys).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"unclaimed": 0, "has_fallback": false})
    );

    let out = r.ok(&signer, &publish_req(&signer, 5, true)).await;
    assert_eq!(out["ok"], true);
    assert_eq!(out["user_id"], me.as_str());
    assert_eq!(out["fingerprint"], me.as_str());
    assert_eq!(out["one_time_keys_added"], 5);
    assert_eq!(out["fallback_key_set"], true);

    // Keys accumulate; publishing without a fallback keeps the old one.
    let out = r.ok(&signer, &publish_req(&signer, 3, false)).await;
    assert_eq!(out["fallback_key_set"], false);
    let counts = r.ok(&signer, &CountKeys).await;
    assert_eq!(
        counts,
        serde_json::json!({"unclaimed": 8, "has_fallback": true})
    );
}

#[tokio::test]
async fn publish_refuses_someone_elses_keys() {
    let r = start().await;
    let me = KeyPairSigner::random();
    let other = KeyPairSigner::random();
    let (status, body) = r.call(&me, &publish_req(&other, 1, false)).await;
    assert_eq!(status, 400);
    assert!(error_text(&body).contains("do not match user id"), "{body}");
    // Nothing was stored for either.
    let counts = r.ok(&other, &CountKeys).await;
    assert_eq!(counts["unclaimed"], 0);
}

#[tokio::test]
async fn get_keys_returns_the_peers_keys_without_consuming() {
    let r = start().await;
    let (alice, _) = r.user(2).await;
    let (bob, bob_id) = r.user(2).await;
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
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 2);

    let stranger = UserId::parse(&"0".repeat(32), "p").unwrap();
    let (status, body) = r.call(&alice, &GetKeys { peer: stranger }).await;
    assert_eq!(status, 404);
    assert!(error_text(&body).contains("unknown peer"), "{body}");
}

#[tokio::test]
async fn claim_key_hands_out_each_key_once_then_the_fallback() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(2).await;
    let claim = ClaimKey {
        peer: bob_id.clone(),
    };
    let a = r.ok(&alice, &claim).await;
    let b = r.ok(&alice, &claim).await;
    assert_eq!(a["fallback"], false);
    assert_eq!(b["fallback"], false);
    assert_eq!(a["key_id"], "k0", "oldest key first");
    assert_eq!(b["key_id"], "k1");
    assert_ne!(a["one_time_key"], b["one_time_key"]);
    assert_eq!(a["identity_key"], bob.identity_key());
    assert_eq!(a["signing_key"], bob.signing_key());
    let c = r.ok(&alice, &claim).await;
    assert_eq!(c["fallback"], true);
    assert_eq!(c["key_id"], "fb");
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 0);

    // A peer with neither: refused, and so is an unknown one.
    let carol = KeyPairSigner::random();
    r.ok(&carol, &publish_req(&carol, 0, false)).await;
    let (status, body) = r
        .call(
            &alice,
            &ClaimKey {
                peer: id_of(&carol),
            },
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        error_text(&body).contains("no one-time keys left"),
        "{body}"
    );
    let (status, _) = r
        .call(
            &alice,
            &ClaimKey {
                peer: UserId::parse(&"1".repeat(32), "p").unwrap(),
            },
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn send_and_read_messages_in_order_with_the_authenticated_sender() {
    let r = start().await;
    let (alice, alice_id) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let mut sent_ids = Vec::new();
    for i in 0..3 {
        let out = r.ok(&alice, &send_req(&bob_id, &format!("m{i}"))).await;
        sent_ids.push(out["message_id"].as_i64().unwrap());
        assert!(out["ts"].as_f64().unwrap() > 1.7e9);
    }
    let pre = SendMessage::new(bob_id.clone(), MessageType::PreKey, b"pre");
    r.ok(&alice, &pre).await;

    let mail = r.ok(&bob, &ReadMessages::default()).await;
    let mail = mail.as_array().unwrap();
    assert_eq!(mail.len(), 4);
    for (i, m) in mail.iter().take(3).enumerate() {
        assert_eq!(m["message_id"], sent_ids[i]);
        assert_eq!(m["from"], alice_id.as_str());
        assert_eq!(m["mtype"], 1);
        assert_eq!(
            m["body"],
            base64::engine::general_purpose::STANDARD.encode(format!("m{i}"))
        );
    }
    assert_eq!(mail[3]["mtype"], 0);
    // Delivered mail is gone.
    let again = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(again, serde_json::json!([]));
}

#[tokio::test]
async fn send_to_unknown_recipient_is_refused() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let nobody = UserId::parse(&"a".repeat(32), "to").unwrap();
    let (status, body) = r.call(&alice, &send_req(&nobody, "hi")).await;
    assert_eq!(status, 404);
    assert!(error_text(&body).contains("unknown recipient"), "{body}");
}

#[tokio::test]
async fn read_with_peer_and_peek() {
    let r = start().await;
    let (alice, alice_id) = r.user(0).await;
    let (carol, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "from alice")).await;
    r.ok(&carol, &send_req(&bob_id, "from carol")).await;

    // Peek shows everything and deletes nothing.
    let peek = ReadMessages {
        peek: true,
        ..Default::default()
    };
    assert_eq!(r.ok(&bob, &peek).await.as_array().unwrap().len(), 2);
    assert_eq!(r.ok(&bob, &peek).await.as_array().unwrap().len(), 2);

    // Peer takes only that sender's mail.
    let only_alice = ReadMessages {
        peer: Some(alice_id.clone()),
        ..Default::default()
    };
    let got = r.ok(&bob, &only_alice).await;
    assert_eq!(got.as_array().unwrap().len(), 1);
    assert_eq!(got[0]["from"], alice_id.as_str());
    let rest = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_ne!(rest[0]["from"], alice_id.as_str());
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

#[tokio::test]
async fn nack_refuses_that_ciphertext_with_the_signed_proof() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let msg = send_req(&bob_id, "unwanted");
    let nack = nack_for(&bob, &msg.body);
    assert_eq!(r.ok(&bob, &nack).await, serde_json::json!({"ok": true}));

    let out = r.ok(&alice, &msg).await;
    assert_eq!(out["refused"], true);
    assert_eq!(out["hash"], nack.hash);
    assert_eq!(out["sig"], nack.sig);
    // Not stored; other bodies still are.
    r.ok(&alice, &send_req(&bob_id, "wanted")).await;
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn nack_with_a_forged_signature_is_refused() {
    let r = start().await;
    let (bob, _) = r.user(0).await;
    let mallory = KeyPairSigner::random();
    let mut nack = nack_for(&mallory, "Zm9v");
    // Bob's request carrying a signature Bob never made.
    let (status, body) = r.call(&bob, &nack).await;
    assert_eq!(status, 401);
    assert!(error_text(&body).contains("bad nack signature"), "{body}");
    nack.hash = "f".repeat(64);
    let (status, _) = r.call(&bob, &nack).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn refusals_are_bounded_per_recipient() {
    let r = start_with(|c| c.max_refused = 2).await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let msgs: Vec<_> = (0..3)
        .map(|i| send_req(&bob_id, &format!("x{i}")))
        .collect();
    for m in &msgs {
        r.ok(&bob, &nack_for(&bob, &m.body)).await;
    }
    // The oldest refusal was evicted: that body is stored again.
    assert!(r.ok(&alice, &msgs[0]).await.get("message_id").is_some());
    assert_eq!(r.ok(&alice, &msgs[2]).await["refused"], true);
}

#[tokio::test]
async fn info_advertises_policy_and_wait_support() {
    let r = start().await;
    for path in ["/info", "/info/", "/prefix/info"] {
        let resp = r
            .http
            .get(format!("{}{path}", r.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let info: RelayInfo = resp.json().await.unwrap();
        assert_eq!(info.max_group_size, 100);
        assert_eq!(info.max_wait, Some(60));
        assert_eq!(
            info.server.as_deref(),
            Some(concat!("retalk-server ", env!("CARGO_PKG_VERSION")))
        );
    }
    let resp = r
        .http
        .get(format!("{}/nothing", r.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
    let resp = r.http.put(r.addr()).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn configured_group_size_is_served() {
    let r = start_with(|c| c.max_group_size = 7).await;
    let info: RelayInfo = r
        .http
        .get(format!("{}/info", r.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info.max_group_size, 7);
}
