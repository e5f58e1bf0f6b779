//! Where the time of a command goes, printed for people (no timing is
//! asserted: machines differ). What is asserted is that everything timed
//! also worked: each message arrives exactly once and outboxes empty.
//!
//!     RETALK_TIMING_ROUNDS=30 cargo test --release --test client_timing -- --nocapture
//!
//! prints, in milliseconds (min / median): `User::open` with the default
//! Argon2id cost and with a cheap one (their difference is the key
//! derivation), a send on an established session, and what `retalk send`
//! does in a fresh process (open + ensure_published + send).

mod support;

use std::time::Instant;

use retalk::User;
use support::*;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!("min {:.1} / median {:.1}", v[0], v[v.len() / 2])
}

#[tokio::test(flavor = "current_thread")]
async fn where_the_time_goes() {
    let rounds: usize = std::env::var("RETALK_TIMING_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let slow_dir = tmp.path().join("alice");
    let alice = User::create(&slow_dir, PASS, "alice", Some(&relay.url()))
        .await
        .unwrap();
    alice.publish(100, false).await.unwrap();
    drop(alice);
    let bob = user(tmp.path(), "bob", &relay.url()).await;

    let (mut open_default, mut open_cheap) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        drop(User::open(&slow_dir, PASS).await.unwrap());
        open_default.push(ms(t));
        let t = Instant::now();
        drop(User::open(&tmp.path().join("bob"), PASS).await.unwrap());
        open_cheap.push(ms(t));
    }

    let alice = User::open(&slow_dir, PASS).await.unwrap();
    alice.send(&bob.user_id(), "hello").await.unwrap();
    let mut sends = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        alice.send(&bob.user_id(), &format!("s{i}")).await.unwrap();
        sends.push(ms(t));
    }
    drop(alice);
    let mut commands = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let a = User::open(&slow_dir, PASS).await.unwrap();
        a.ensure_published().await.unwrap();
        a.send(&bob.user_id(), &format!("c{i}")).await.unwrap();
        commands.push(ms(t));
    }
    let t = Instant::now();
    let got = bob.receive().await.unwrap();
    let receive = ms(t);
    assert_eq!(got.len(), 1 + 2 * rounds);
    let mut ids: Vec<&str> = got.iter().map(|m| m.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), got.len());
    let alice = User::open(&slow_dir, PASS).await.unwrap();
    alice.receive().await.unwrap();
    assert_eq!(alice.outbox_len().unwrap(), 0);

    println!("open, Argon2id 19 MiB t=2 (ms): {}", summary(open_default));
    println!("open, cheap KDF (ms):            {}", summary(open_cheap));
    println!("send, established session (ms): {}", summary(sends));
    println!("open + ensure_published + send (ms): {}", summary(commands));
    println!("receive of {} messages (ms): {receive:.1}", got.len());
    relay.relay.shutdown().await;
}
