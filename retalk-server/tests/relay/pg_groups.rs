//! Group commit on PostgreSQL: many requests at once on two replicas, so
//! that they share transactions, and every answer is still what the same
//! requests one at a time would get (caps exact, nonces once, ids right).

use std::collections::{HashMap, HashSet};

use retalk::proto::tools::ReadMessages;
use retalk::proto::{build_request, Dialect, KeyPairSigner, UserId};
use retalk_testkit::*;
use serde_json::Value;

const AUDIENCE: &str = "http://relay.test";

async fn replicas(tweak: fn(&mut retalk_server::Config)) -> (TestRelay, TestRelay, String) {
    let url = tokio::task::spawn_blocking(retalk_testkit::postgres::database)
        .await
        .unwrap();
    let start = |url: String| {
        start_with(move |c| {
            c.postgres = Some(url);
            c.audiences = vec![AUDIENCE.into()];
            tweak(c);
        })
    };
    let a = start(url.clone()).await;
    let b = start(url.clone()).await;
    (a, b, url)
}

/// Everything in `who`'s mailbox, read (and deleted) page by page.
async fn drain(r: &TestRelay, who: &KeyPairSigner) -> Vec<Value> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let page = r.ok(who, &ReadMessages::default()).await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
    panic!("the mailbox never emptied");
}

/// (count, bytes) of the mailbox totals row.
async fn totals(url: &str, who: &UserId) -> (i64, i64) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT count, bytes FROM retalk_mailboxes WHERE recipient = $1::text",
            &[&who.as_str()],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_the_ids_they_are_read_back_with() {
    let (a, b, url) = replicas(|_| {}).await;
    let (bob, bob_id) = a.user(0).await;
    let senders: Vec<KeyPairSigner> = (0..8).map(|_| KeyPairSigner::random()).collect();
    let sends = (0..240).map(|i| {
        let r = if i % 2 == 0 { &a } else { &b };
        let text = format!("message {i}");
        let sender = &senders[i % senders.len()];
        let req = send_req(&bob_id, &text);
        async move {
            let out = r.ok(sender, &req).await;
            (text, out["message_id"].as_i64().unwrap())
        }
    });
    let answered: Vec<(String, i64)> = futures_util::future::join_all(sends).await;
    let ids: HashSet<i64> = answered.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), answered.len(), "every send got its own id");

    let read = drain(&b, &bob).await;
    assert_eq!(read.len(), answered.len());
    let by_body: HashMap<String, i64> = answered
        .iter()
        .map(|(text, id)| {
            let body = send_req(&bob_id, text).body;
            (body, *id)
        })
        .collect();
    let mut last = i64::MIN;
    for m in &read {
        let id = m["message_id"].as_i64().unwrap();
        assert!(id > last, "read in id order");
        last = id;
        assert_eq!(
            by_body.get(m["body"].as_str().unwrap()),
            Some(&id),
            "the id a send was answered with is the one its message has"
        );
    }
    assert_eq!(totals(&url, &bob_id).await, (0, 0), "totals back to empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_cap_is_exact_under_concurrent_sends_on_both_replicas() {
    let (a, b, url) = replicas(|c| c.max_mailbox = 50).await;
    let (bob, bob_id) = a.user(0).await;
    let senders: Vec<KeyPairSigner> = (0..20).map(|_| KeyPairSigner::random()).collect();
    let sends = (0..200).map(|i| {
        let r = if i % 2 == 0 { &a } else { &b };
        let sender = &senders[i % senders.len()];
        let req = send_req(&bob_id, &format!("m{i:03}"));
        async move { r.call(sender, &req).await }
    });
    let out = futures_util::future::join_all(sends).await;
    let stored = out.iter().filter(|(s, _)| *s == 200).count();
    let full: Vec<&Value> = out
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(stored, 50, "exactly the cap stored");
    assert_eq!(full.len(), 150, "{out:?}");
    assert!(full
        .iter()
        .all(|v| error_text(v).starts_with("mailbox full: ")));
    assert_eq!(totals(&url, &bob_id).await.0, 50);
    assert_eq!(drain(&a, &bob).await.len(), 50);
    assert_eq!(totals(&url, &bob_id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_sender_and_byte_caps_are_exact_under_concurrent_sends() {
    let (a, b, _) = replicas(|c| {
        c.max_mailbox_per_sender = 5;
        c.max_mailbox_bytes = 40 * 64;
    })
    .await;
    let (bob, bob_id) = a.user(0).await;
    let pushy = KeyPairSigner::random();
    let sends = (0..30).map(|i| {
        let r = if i % 2 == 0 { &a } else { &b };
        let req = send_req(&bob_id, &format!("p{i:02}"));
        let pushy = &pushy;
        async move { r.call(pushy, &req).await }
    });
    let out = futures_util::future::join_all(sends).await;
    assert_eq!(out.iter().filter(|(s, _)| *s == 200).count(), 5, "{out:?}");
    assert!(out
        .iter()
        .filter(|(s, _)| *s != 200)
        .all(|(s, v)| *s == 429 && error_text(v).starts_with("mailbox full for sender: ")));

    // Bodies of 48 base64 bytes against a 2,560-byte cap, of which the 5
    // above take 20: exactly as many more as fit are stored.
    let others: Vec<KeyPairSigner> = (0..80).map(|_| KeyPairSigner::random()).collect();
    let text = "x".repeat(36);
    let sends = others.iter().enumerate().map(|(i, s)| {
        let r = if i % 2 == 0 { &a } else { &b };
        let req = send_req(&bob_id, &text);
        async move { r.call(s, &req).await }
    });
    let out = futures_util::future::join_all(sends).await;
    let body_len = send_req(&bob_id, &text).body.len();
    let first = send_req(&bob_id, "p00").body.len();
    let room = (40 * 64 - 5 * first) / body_len;
    assert_eq!(
        out.iter().filter(|(s, _)| *s == 200).count(),
        room,
        "byte cap exact"
    );
    assert_eq!(drain(&b, &bob).await.len(), 5 + room);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_fired_many_times_at_once_is_stored_once() {
    let (a, b, _) = replicas(|_| {}).await;
    let (alice, _) = a.user(0).await;
    let (bob, bob_id) = a.user(0).await;
    let body = build_request(
        &send_req(&bob_id, "only once"),
        &alice,
        AUDIENCE,
        Dialect::Both,
        now(),
    )
    .unwrap();
    let shots = (0..12).map(|i| {
        let r = if i % 3 == 0 { &b } else { &a };
        r.post_raw(body.clone())
    });
    let out = futures_util::future::join_all(shots).await;
    assert_eq!(out.iter().filter(|(s, _)| *s == 200).count(), 1, "{out:?}");
    assert!(out
        .iter()
        .filter(|(s, _)| *s != 200)
        .all(|(s, v)| *s == 401 && error_text(v).contains("replay")));
    assert_eq!(drain(&a, &bob).await.len(), 1);
}
