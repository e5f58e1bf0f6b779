//! `read_messages` with `wait`: held while the mailbox is empty, answered
//! when mail arrives or at the deadline; freed when the client leaves or
//! the relay stops.

use std::time::{Duration, Instant};

use retalk::proto::tools::ReadMessages;
use retalk::proto::{build_request, Dialect, KeyPairSigner};
use retalk_testkit::*;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

fn waiting_read(wait: u64) -> ReadMessages {
    ReadMessages {
        wait: Some(wait),
        ..Default::default()
    }
}

/// Starts a waiting read as its own task (holding only the relay's
/// address, so the relay can still be shut down) and returns once the
/// relay holds it.
async fn spawn_wait(
    r: &TestRelay,
    who: &KeyPairSigner,
    req: ReadMessages,
) -> tokio::task::JoinHandle<(u16, Value, Duration)> {
    let before = r.relay.waiting();
    let body = build_request(&req, who, &r.url(), Dialect::Both, now()).unwrap();
    let (http, addr) = (r.http.clone(), r.addr());
    let task = tokio::spawn(async move {
        let t = Instant::now();
        let (s, v) = post_raw(&http, &addr, body).await;
        (s, v, t.elapsed())
    });
    eventually("the read to wait", || r.relay.waiting() > before).await;
    task
}

#[tokio::test]
async fn waiting_read_wakes_when_mail_arrives() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let waiter = spawn_wait(&r, &bob, waiting_read(60)).await;
    let sent = Instant::now();
    r.ok(&alice, &send_req(&bob_id, "hello")).await;
    let (status, mail, _) = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap();
    let woke_after = sent.elapsed();
    assert_eq!(status, 200);
    assert_eq!(mail.as_array().unwrap().len(), 1, "{mail}");
    // Far from the 60 s deadline: it was woken, not timed out.
    assert!(woke_after < Duration::from_secs(20), "{woke_after:?}");
    eprintln!("woken {woke_after:?} after the send was answered");
    assert_eq!(r.relay.waiting(), 0);
    // It was a normal read: the mail is gone.
    assert_eq!(r.ok(&bob, &ReadMessages::default()).await, json!([]));
}

#[tokio::test]
async fn waiting_read_returns_an_empty_list_at_the_deadline() {
    let r = start().await;
    let (bob, _) = r.user(0).await;
    let t = Instant::now();
    let (status, mail) = r.call(&bob, &waiting_read(1)).await;
    assert_eq!(status, 200);
    assert_eq!(mail, json!([]));
    assert!(
        t.elapsed() >= Duration::from_millis(990),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.relay.waiting(), 0);
}

#[tokio::test]
async fn waiting_read_with_mail_present_answers_at_once() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "already here")).await;
    let (status, mail) = r.call(&bob, &waiting_read(60)).await;
    assert_eq!(status, 200);
    assert_eq!(mail.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn waiting_for_one_peer_ignores_others_mail() {
    let r = start().await;
    let (alice, alice_id) = r.user(0).await;
    let (carol, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let req = ReadMessages {
        peer: Some(alice_id.clone()),
        wait: Some(60),
        ..Default::default()
    };
    let waiter = spawn_wait(&r, &bob, req).await;
    r.ok(&carol, &send_req(&bob_id, "not for the waiter")).await;
    r.ok(&alice, &send_req(&bob_id, "for the waiter")).await;
    let (status, mail, _) = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    let mail = mail.as_array().unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["from"], alice_id.as_str());
    // Carol's message is still there.
    let rest = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
}

/// Two readers waiting on one mailbox: one message goes to exactly one of
/// them; the other keeps waiting (until the relay stops).
#[tokio::test]
async fn one_message_wakes_two_waiters_but_is_delivered_once() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let w1 = spawn_wait(&r, &bob, waiting_read(60)).await;
    let w2 = spawn_wait(&r, &bob, waiting_read(60)).await;
    r.ok(&alice, &send_req(&bob_id, "only one")).await;
    // One of them is answered (only mail can answer it before 60 s); the
    // other goes back to waiting until the relay stops.
    eventually("one waiter to be answered", || {
        w1.is_finished() || w2.is_finished()
    })
    .await;
    tokio::time::timeout(PATIENCE, r.relay.shutdown())
        .await
        .expect("shutdown hung");
    let (a, b) = (w1.await.unwrap(), w2.await.unwrap());
    assert_eq!((a.0, b.0), (200, 200));
    let total = a.1.as_array().unwrap().len() + b.1.as_array().unwrap().len();
    assert_eq!(total, 1, "{} / {}", a.1, b.1);
}

/// A client that goes away frees its waiter at once, and a message that
/// arrives afterwards is not consumed on its behalf.
#[tokio::test]
async fn disconnecting_client_frees_its_waiter() {
    let r = start().await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    let body = build_request(&waiting_read(60), &bob, &r.url(), Dialect::Both, now()).unwrap();
    let mut s = tokio::net::TcpStream::connect(r.relay.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    eventually("the read to wait", || r.relay.waiting() == 1).await;
    drop(s);
    eventually("the waiter to be freed", || r.relay.waiting() == 0).await;
    r.ok(&alice, &send_req(&bob_id, "for later")).await;
    let mail = r.ok(&bob, &ReadMessages::default()).await;
    assert_eq!(mail.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn shutdown_releases_waiters() {
    let r = start().await;
    let (bob, _) = r.user(0).await;
    let w1 = spawn_wait(&r, &bob, waiting_read(60)).await;
    let w2 = spawn_wait(&r, &bob, waiting_read(60)).await;
    let t = Instant::now();
    tokio::time::timeout(PATIENCE, r.relay.shutdown())
        .await
        .expect("shutdown hung");
    for w in [w1, w2] {
        let (status, mail, _) = w.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(mail, json!([]));
    }
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

/// Many idle waiters cost no thread each: a few hundred are held at once,
/// and a stopping relay answers them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_are_cheap() {
    let r = start().await;
    let n = 300;
    let mut bodies = Vec::new();
    for _ in 0..n {
        let (u, _) = r.user(0).await;
        bodies.push(build_request(&waiting_read(60), &u, &r.url(), Dialect::Both, now()).unwrap());
    }
    let threads_before = thread_count();
    let mut tasks = Vec::new();
    for body in bodies {
        let (http, addr) = (r.http.clone(), r.addr());
        tasks.push(tokio::spawn(
            async move { post_raw(&http, &addr, body).await },
        ));
    }
    eventually("all reads to wait", || r.relay.waiting() == n).await;
    if let (Some(before), Some(during)) = (threads_before, thread_count()) {
        assert!(
            during <= before + 8,
            "threads grew from {before} to {during}"
        );
    }
    tokio::time::timeout(PATIENCE, r.relay.shutdown())
        .await
        .expect("shutdown hung");
    for t in tasks {
        let (status, mail) = t.await.unwrap();
        assert_eq!((status, mail), (200, json!([])));
    }
}

fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}
