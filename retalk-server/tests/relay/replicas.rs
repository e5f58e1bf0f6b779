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

/// POSTs `body`; `None` when the connection fails (the relay died).
async fn try_post(
    http: &reqwest::Client,
    addr: &str,
    body: Vec<u8>,
) -> Option<(u16, serde_json::Value)> {
    let resp = http.post(addr).body(body).send().await.ok()?;
    let status = resp.status().as_u16();
    let value = resp.json().await.ok()?;
    Some((status, value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_replica_mid_burst_loses_no_acknowledged_send() {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--port", "0", "--db", &url, "--audience", AUDIENCE];
    let cmd = relay_command(&relay_bin(), dir.path(), &args, &[]);
    let mut a = RelayProcess::launch(cmd, dir.path().join("unused")).unwrap();
    assert!(
        a.banner.contains("postgres://postgres@127.0.0.1"),
        "{}",
        a.banner
    );
    let b = start_with(move |c| {
        c.postgres = Some(url);
        c.audiences = vec![AUDIENCE.into()];
    })
    .await;
    let (bob, bob_id) = b.user(0).await;
    let http = client();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..6 {
        let (http, addr, to, acked) = (http.clone(), a.addr.clone(), bob_id.clone(), acked.clone());
        senders.spawn(async move {
            let me = KeyPairSigner::random();
            let publish = retalk::proto::build_request(
                &publish_req(&me, 0, false),
                &me,
                AUDIENCE,
                retalk::proto::Dialect::Both,
                now(),
            )
            .unwrap();
            if try_post(&http, &addr, publish).await.map(|r| r.0) != Some(200) {
                return;
            }
            for i in 0..10_000 {
                let body = retalk::proto::build_request(
                    &send_req(&to, &format!("{s}/{i}")),
                    &me,
                    AUDIENCE,
                    retalk::proto::Dialect::Both,
                    now(),
                )
                .unwrap();
                match try_post(&http, &addr, body).await {
                    Some((200, out)) => {
                        acked
                            .lock()
                            .unwrap()
                            .insert(out["message_id"].as_i64().unwrap());
                    }
                    _ => return,
                }
            }
        });
    }
    eventually("60 sends acknowledged by replica A", || {
        acked.lock().unwrap().len() >= 60
    })
    .await;
    a.kill();
    while senders.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();

    // Replica B keeps serving, and holds every send A acknowledged.
    let (alice, _) = b.user(0).await;
    let after = b.ok(&alice, &send_req(&bob_id, "after the crash")).await;
    let mut got = HashSet::new();
    loop {
        let mail = b.ok(&bob, &ReadMessages::default()).await;
        let mail = mail.as_array().unwrap().clone();
        if mail.is_empty() {
            break;
        }
        got.extend(mail.iter().map(|m| m["message_id"].as_i64().unwrap()));
    }
    let lost: Vec<_> = acked.difference(&got).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(got.contains(&after["message_id"].as_i64().unwrap()));
}
