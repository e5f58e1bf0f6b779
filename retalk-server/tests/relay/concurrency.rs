//! Real concurrency: simultaneous claims never share a one-time key, and
//! sends racing reads deliver every message exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use retalk::proto::tools::{ClaimKey, CountKeys, ReadMessages};
use retalk::proto::KeyPairSigner;
use retalk_testkit::*;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_share_a_key() {
    let r = Arc::new(start().await);
    let (bob, bob_id) = r.user(20).await;
    let claimers = 50;
    let barrier = Arc::new(Barrier::new(claimers));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..claimers {
        let r = Arc::clone(&r);
        let barrier = Arc::clone(&barrier);
        let peer = bob_id.clone();
        tasks.spawn(async move {
            let me = KeyPairSigner::random();
            let body = retalk::proto::build_request(
                &ClaimKey { peer },
                &me,
                &r.url(),
                retalk::proto::Dialect::Both,
                now(),
            )
            .unwrap();
            // Each task has its own connection; all fire together.
            let http = client();
            barrier.wait().await;
            post_raw(&http, &r.addr(), body).await
        });
    }
    let mut one_time = Vec::new();
    let mut fallback = 0;
    while let Some(res) = tasks.join_next().await {
        let (status, body) = res.unwrap();
        assert_eq!(status, 200, "{body}");
        if body["fallback"] == true {
            fallback += 1;
        } else {
            one_time.push(body["one_time_key"].as_str().unwrap().to_owned());
        }
    }
    let distinct: HashSet<_> = one_time.iter().collect();
    assert_eq!(one_time.len(), 20, "every one-time key handed out");
    assert_eq!(distinct.len(), 20, "no one-time key handed out twice");
    assert_eq!(fallback, 30);
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_racing_reads_deliver_each_message_exactly_once() {
    let r = Arc::new(start().await);
    let (bob, bob_id) = r.user(0).await;
    let senders = 4;
    let per_sender = 60;
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let r = Arc::clone(&r);
        let to = bob_id.clone();
        tasks.spawn(async move {
            let (me, _) = r.user(0).await;
            let http = client();
            for i in 0..per_sender {
                let body = retalk::proto::build_request(
                    &send_req(&to, &format!("{s}:{i}")),
                    &me,
                    &r.url(),
                    retalk::proto::Dialect::Both,
                    now(),
                )
                .unwrap();
                let (status, answer) = post_raw(&http, &r.addr(), body).await;
                assert_eq!(status, 200, "{answer}");
            }
        });
    }
    // Read while the senders are sending, until everything has arrived.
    let total = senders * per_sender;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut ids = HashSet::new();
    let mut reads = 0;
    let deadline = std::time::Instant::now() + PATIENCE;
    while seen.values().sum::<usize>() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {total} arrived",
            seen.len()
        );
        let mail = r.ok(&bob, &ReadMessages::default()).await;
        reads += 1;
        for m in mail.as_array().unwrap() {
            assert!(
                ids.insert(m["message_id"].as_i64().unwrap()),
                "id delivered twice"
            );
            *seen
                .entry(m["body"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    while let Some(res) = tasks.join_next().await {
        res.unwrap();
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a message was delivered twice"
    );
    assert_eq!(seen.len(), total);
    assert_eq!(
        r.ok(&bob, &ReadMessages::default()).await,
        serde_json::json!([])
    );
    assert!(reads > 1, "the reads did not overlap the sends");
}
