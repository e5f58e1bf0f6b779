//! Two relay replicas on one PostgreSQL database, as behind a load
//! balancer: both serve the same audience, and whatever one accepts the
//! other sees (keys, mail, nonces, claims, wake-ups).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use retalk::proto::tools::{ClaimKey, GetKeys, ReadMessages};
use retalk::proto::KeyPairSigner;
use retalk_testkit::*;

const AUDIENCE: &str = "http://relay.test";

/// Two relays on one fresh database, with the same public URL.
async fn replicas() -> (TestRelay, TestRelay, String) {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let start = |url: String| {
        start_with(move |c| {
            c.postgres = Some(url);
            c.audiences = vec![AUDIENCE.into()];
        })
    };
    let a = start(url.clone()).await;
    let b = start(url.clone()).await;
    (a, b, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_across_replicas() {
    let (a, b, _) = replicas().await;
    let (alice, alice_id) = a.user(1).await;
    let (bob, bob_id) = b.user(1).await;
    let keys = a
        .ok(
            &alice,
            &GetKeys {
                peer: bob_id.clone(),
            },
        )
        .await;
    assert_eq!(
        keys["signing_key"],
        retalk::proto::RequestSigner::signing_key(&bob)
    );
    a.ok(&alice, &send_req(&bob_id, "hi bob")).await;
    let mail = b.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1, "{mail}");
    assert_eq!(mail[0]["from"], alice_id.as_str());
    b.ok(&bob, &send_req(&alice_id, "hi alice")).await;
    let mail = a.ok(&alice, &ReadMessages::default()).await;
    assert_eq!(mail[0]["from"], bob_id.as_str());
    // Delivered once: gone on both.
    assert_eq!(
        b.ok(&bob, &ReadMessages::default()).await,
        serde_json::json!([])
    );
    assert_eq!(
        a.ok(&bob, &ReadMessages::default()).await,
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_accepted_by_one_replica_is_a_replay_at_the_other() {
    let (a, b, _) = replicas().await;
    let (alice, _) = a.user(0).await;
    let (bob, bob_id) = a.user(0).await;
    let body = retalk::proto::build_request(
        &send_req(&bob_id, "once"),
        &alice,
        AUDIENCE,
        retalk::proto::Dialect::Both,
        now(),
    )
    .unwrap();
    let (status, out) = a.post_raw(body.clone()).await;
    assert_eq!(status, 200, "{out}");
    let (status, out) = b.post_raw(body).await;
    assert_eq!(status, 401, "{out}");
    assert!(error_text(&out).contains("replay"), "{out}");
    let mail = b.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1, "stored once: {mail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_over_both_replicas_hand_out_no_key_twice() {
    let (a, b, _) = replicas().await;
    let (_, bob_id) = a.user(300).await;
    let claimers: Vec<KeyPairSigner> = (0..400).map(|_| KeyPairSigner::random()).collect();
    let claim = ClaimKey {
        peer: bob_id.clone(),
    };
    let claims = claimers.iter().enumerate().map(|(i, c)| {
        let r = if i % 2 == 0 { &a } else { &b };
        r.ok(c, &claim)
    });
    let out = futures_util::future::join_all(claims).await;
    let keys: Vec<&serde_json::Value> = out.iter().filter(|k| k["fallback"] == false).collect();
    let ids: HashSet<String> = keys.iter().map(|k| k["key_id"].to_string()).collect();
    assert_eq!(ids.len(), keys.len(), "a one-time key was handed out twice");
    assert_eq!(keys.len(), 300, "every key handed out, each once");
}

/// Waits on `b` for Bob's mail while Alice sends on `a`; the latency.
async fn woken_across(
    a: &TestRelay,
    b: &TestRelay,
    alice: &KeyPairSigner,
    bob: &KeyPairSigner,
    bob_id: &retalk::proto::UserId,
) -> Duration {
    let wait = ReadMessages {
        wait: Some(30),
        ..Default::default()
    };
    let (woken, sent_at) = tokio::join!(b.ok(bob, &wait), async {
        eventually("Bob's read waits on replica B", || b.relay.waiting() == 1).await;
        let t = Instant::now();
        a.ok(alice, &send_req(bob_id, "wake up")).await;
        t
    });
    assert_eq!(woken.as_array().unwrap().len(), 1, "{woken}");
    sent_at.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_on_one_replica_is_woken_by_a_send_on_the_other() {
    let (a, b, url) = replicas().await;
    let (alice, _) = a.user(0).await;
    let (bob, bob_id) = b.user(0).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(woken_across(&a, &b, &alice, &bob, &bob_id).await);
    }
    eprintln!("cross-replica wake-up, worst of 5: {worst:?}");

    // Cut every LISTEN connection: the replicas reconnect, and a waiter
    // is still woken (by the new LISTEN or, meanwhile, the re-check).
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let cut = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query ILIKE 'LISTEN%' AND datname = current_database() \
             AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut.len(), 2, "each replica keeps one LISTEN connection");
    woken_across(&a, &b, &alice, &bob, &bob_id).await;
    // And the listeners are back.
    let mut back = 0;
    for _ in 0..100 {
        back = client
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' \
                 AND datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .len();
        if back == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, 2, "both replicas listen again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_migrate_the_schema_once() {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let starts = (0..4).map(|_| {
        let url = url.clone();
        start_with(move |c| {
            c.postgres = Some(url);
            c.audiences = vec![AUDIENCE.into()];
        })
    });
    let relays = futures_util::future::join_all(starts).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let versions: Vec<i64> = client
        .query("SELECT version FROM retalk_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1], "each migration recorded once");
    // And every one of them serves.
    let (alice, _) = relays[0].user(0).await;
    let (bob, bob_id) = relays[1].user(0).await;
    relays[2].ok(&alice, &send_req(&bob_id, "hi")).await;
    let mail = relays[3].ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1);
}
