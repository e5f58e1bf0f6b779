//! `retalk-bench library`: where the time of the client library goes, in
//! this process against an in-process relay: `User::open` with the default
//! Argon2id cost and with a cheap one (their difference is the key
//! derivation), a send on an established session, and what `retalk send`
//! does in a fresh process (open + ensure_published + send). Everything
//! timed must also have worked: each message arrives exactly once and the
//! outboxes empty, or the scenario fails.
//!
//!     cargo run --release -p retalk-bench -- library --rounds 30

use std::time::Instant;

use clap::Args as ClapArgs;
use retalk::{CreateOptions, KdfParams, User};
use serde::Serialize;

use crate::stats::{Latency, Recorder};

/// Options of `retalk-bench library`.
#[derive(ClapArgs, Debug, Clone)]
pub struct LibraryArgs {
    /// Timed repetitions of each step.
    #[arg(long, default_value_t = 30)]
    pub rounds: usize,
}

/// Milliseconds per step.
#[derive(Debug, Serialize)]
pub struct LibraryReport {
    /// Repetitions of each step.
    pub rounds: usize,
    /// `User::open` with the default Argon2id cost.
    pub open_default: Latency,
    /// `User::open` with a cheap key derivation.
    pub open_cheap: Latency,
    /// One send on an established session.
    pub send: Latency,
    /// What `retalk send` does: open + ensure_published + send.
    pub command: Latency,
    /// One receive of everything sent.
    pub receive_ms: f64,
}

const PASS: &str = "bench passphrase";

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn latency(samples: &[f64]) -> Latency {
    let mut r = Recorder::default();
    for ms in samples {
        r.record(std::time::Duration::from_secs_f64(ms / 1000.0));
    }
    r.latency()
}

fn fail(what: &str) -> impl Fn(retalk::ClientError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Runs the scenario.
pub async fn run(args: &LibraryArgs) -> Result<LibraryReport, String> {
    let rounds = args.rounds.max(1);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let relay = retalk_server::Relay::start(retalk_server::Config {
        port: 0,
        db: tmp.path().join("server.db"),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("relay: {e}"))?;
    let url = relay.url();
    let slow_dir = tmp.path().join("alice");
    let alice = User::create(&slow_dir, PASS, "alice", Some(&url))
        .await
        .map_err(fail("create alice"))?;
    alice.publish(100, false).await.map_err(fail("publish"))?;
    drop(alice);
    let cheap = CreateOptions {
        kdf: KdfParams {
            m_kib: 256,
            t: 1,
            p: 1,
        },
    };
    let bob_dir = tmp.path().join("bob");
    let bob = User::create_with(&bob_dir, PASS, "bob", Some(&url), cheap)
        .await
        .map_err(fail("create bob"))?;
    bob.publish(100, false).await.map_err(fail("publish"))?;

    let (mut open_default, mut open_cheap) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        drop(User::open(&slow_dir, PASS).await.map_err(fail("open"))?);
        open_default.push(ms(t));
        let t = Instant::now();
        drop(User::open(&bob_dir, PASS).await.map_err(fail("open"))?);
        open_cheap.push(ms(t));
    }
    let alice = User::open(&slow_dir, PASS).await.map_err(fail("open"))?;
    alice
        .send(&bob.user_id(), "hello")
        .await
        .map_err(fail("send"))?;
    let mut sends = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        alice
            .send(&bob.user_id(), &format!("s{i}"))
            .await
            .map_err(fail("send"))?;
        sends.push(ms(t));
    }
    drop(alice);
    let mut commands = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let a = User::open(&slow_dir, PASS).await.map_err(fail("open"))?;
        a.ensure_published().await.map_err(fail("publish"))?;
        a.send(&bob.user_id(), &format!("c{i}"))
            .await
            .map_err(fail("send"))?;
        commands.push(ms(t));
    }
    let t = Instant::now();
    let got = bob.receive().await.map_err(fail("receive"))?;
    let receive_ms = ms(t);
    let mut ids: Vec<&str> = got.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if got.len() != 1 + 2 * rounds || ids.len() != got.len() {
        return Err(format!(
            "expected {} distinct messages, got {} ({} distinct)",
            1 + 2 * rounds,
            got.len(),
            ids.len()
        ));
    }
    let alice = User::open(&slow_dir, PASS).await.map_err(fail("open"))?;
    alice.receive().await.map_err(fail("receive"))?;
    let left = alice.outbox_len().map_err(fail("outbox"))?;
    if left != 0 {
        return Err(format!("{left} messages left in the outbox"));
    }
    relay.shutdown().await;
    Ok(LibraryReport {
        rounds,
        open_default: latency(&open_default),
        open_cheap: latency(&open_cheap),
        send: latency(&sends),
        command: latency(&commands),
        receive_ms,
    })
}

/// The report as a table.
pub fn render(r: &LibraryReport) -> String {
    let row = |what: &str, l: &Latency| format!("| {what} | {} |\n", l.cell());
    format!(
        "library, {} rounds (ms)\n| step | p50 / p99 / max |\n|---|---|\n{}{}{}{}| receive of everything | {:.1} |",
        r.rounds,
        row("open, Argon2id default cost", &r.open_default),
        row("open, cheap KDF", &r.open_cheap),
        row("send, established session", &r.send),
        row("open + ensure_published + send", &r.command),
        r.receive_ms
    )
}
