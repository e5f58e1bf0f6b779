//! `waiters`: the relay's resident memory while many receivers are waiting
//! (`read_messages` with `wait`) on idle connections, and how fast one of
//! them is woken when mail for it arrives among all the others.
//!
//! Each waiter is a distinct user on its own connection, as a community of
//! idle `retalk receive --follow` listeners would be.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};

use crate::http::Conn;
use crate::relay::Memory;
use crate::stats::{table, Latency, Recorder};
use crate::target_relay::{RelayArgs, UnderTest};
use crate::wire::{message, sign_parallel, User};

/// Options of the `waiters` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitersArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Receivers waiting at once, each a distinct user on its own
    /// connection.
    #[arg(long, default_value_t = 10_000)]
    pub waiters: usize,
    /// The `wait` each receiver asks for, seconds (it must outlast the
    /// setup, about a second per few thousand waiters).
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    /// Seconds to let the relay settle after the last waiter is parked,
    /// before reading its memory.
    #[arg(long, default_value_t = 3.0)]
    pub settle_seconds: f64,
    /// Messages sent to randomly chosen waiters, one at a time, to time how
    /// fast a waiter is woken while all the others keep waiting.
    #[arg(long, default_value_t = 50)]
    pub probes: usize,
}

/// What `waiters` measured.
#[derive(Debug, Clone, Serialize)]
pub struct WaitersReport {
    /// The relay measured.
    pub relay: String,
    /// Receivers parked.
    pub waiters: usize,
    /// Receivers answered before any mail was sent to them (should be 0).
    pub answered_early: usize,
    /// Relay memory with all users' keys published, before the waiters.
    pub before: Option<Memory>,
    /// Relay memory with every waiter parked.
    pub parked: Option<Memory>,
    /// `parked.rss - before.rss` per waiter, bytes.
    pub bytes_per_waiter: Option<f64>,
    /// Send start to the chosen waiter's answer, with the others waiting.
    pub wake: Latency,
    /// Seconds it took to open and park all the waiters.
    pub park_seconds: f64,
}

/// Raises this process's open-file limit to its hard limit (and the hard
/// limit too when allowed), since every waiter holds a socket; relays this
/// process starts inherit the raised limit.
pub fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit on a properly initialised struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_max < want as libc::rlim_t {
            let raised = libc::rlimit {
                rlim_cur: want as libc::rlim_t,
                rlim_max: want as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return;
            }
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// Runs the scenario.
pub async fn run(args: &WaitersArgs) -> Result<WaitersReport, String> {
    let under = args.relay.open().await.map_err(|e| e.to_string())?;
    run_on(&under, args).await
}

/// Runs the scenario against an open relay.
pub async fn run_on(under: &UnderTest, args: &WaitersArgs) -> Result<WaitersReport, String> {
    let relay = under.relay().clone();
    let Some(max_wait) = relay.max_wait().await else {
        return Err(
            "the relay does not support read_messages wait (GET /info has no max_wait): \
             there are no waiting receivers to measure"
                .into(),
        );
    };
    let wait = args.wait.clamp(1, max_wait.max(1));
    let n = args.waiters;
    eprintln!("waiters: publishing keys of {n} users");
    let users = Arc::new(User::many(n + 1));
    relay.publish_all(&users, 32).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = under.memory();

    let reads = Arc::new(sign_parallel(n, |i| {
        relay.read_request(&users[i], Some(wait))
    }));
    eprintln!("waiters: parking {n} receivers (wait {wait} s)");
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant, Result<usize, String>)>();
    let parked = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(256));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (relay, reads, tx, parked, connecting) = (
            relay.clone(),
            reads.clone(),
            tx.clone(),
            parked.clone(),
            connecting.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&relay.target);
            {
                let _permit = connecting.acquire().await.expect("semaphore open");
                if let Err(e) = conn.send_only(&reads[i]).await {
                    let _ = tx.send((i, Instant::now(), Err(format!("connect/send: {e}"))));
                    return;
                }
            }
            parked.fetch_add(1, Ordering::Relaxed);
            let r = conn.read_response().await;
            let at = Instant::now();
            let out = match r {
                Ok(resp) if resp.status == 200 => {
                    serde_json::from_slice::<Vec<serde_json::Value>>(&resp.body)
                        .map(|v| v.len())
                        .map_err(|e| e.to_string())
                }
                Ok(resp) => Err(format!("HTTP {}: {}", resp.status, resp.error_text())),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send((i, at, out));
            // Keep the socket open until the scenario ends.
            std::future::pending::<()>().await;
            drop(conn);
        }));
    }
    drop(tx);
    while parked.load(Ordering::Relaxed) < n {
        if let Ok((i, _, r)) = rx.try_recv() {
            if let Err(e) = r {
                tasks.iter().for_each(|t| t.abort());
                return Err(format!("waiter {i} failed while parking: {e}"));
            }
            tasks.iter().for_each(|t| t.abort());
            return Err(format!(
                "waiter {i} was answered before any mail was sent: the relay did not hold the read"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let park_seconds = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(args.settle_seconds)).await;
    let mut answered_early = 0;
    while let Ok((_, _, r)) = rx.try_recv() {
        answered_early += 1;
        if let Err(e) = r {
            eprintln!("waiters: a waiter failed: {e}");
        }
    }
    let parked_mem = under.memory();
    eprintln!(
        "waiters: {n} parked in {park_seconds:.1} s; probing {} of them",
        args.probes
    );

    // Wake a few, one at a time, while the rest keep waiting.
    let sender = &users[n];
    let mut conn = Conn::new(&relay.target);
    conn.connect().await.map_err(|e| e.to_string())?;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::thread_rng());
    let mut wake = Recorder::default();
    let probe_deadline = start + Duration::from_secs(wait.saturating_sub(2));
    for (seq, &who) in order.iter().take(args.probes).enumerate() {
        if Instant::now() >= probe_deadline {
            break;
        }
        let req = relay.signed(sender, &message(&users[who].id, 64, seq as u64));
        let t0 = Instant::now();
        let resp = conn.request(&req).await.map_err(|e| e.to_string())?;
        if resp.status != 200 {
            return Err(format!("probe send refused: {}", resp.error_text()));
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((i, at, r))) if i == who => {
                    if r != Ok(1) {
                        return Err(format!("woken waiter got {r:?}, expected 1 message"));
                    }
                    wake.record(at - t0);
                    break;
                }
                Ok(Some(_)) => answered_early += 1,
                Ok(None) | Err(_) => return Err(format!("waiter {who} was not woken within 10 s")),
            }
        }
    }
    tasks.iter().for_each(|t| t.abort());
    let bytes_per_waiter = match (before, parked_mem) {
        (Some(b), Some(p)) => Some((p.rss_kib as f64 - b.rss_kib as f64) * 1024.0 / n as f64),
        _ => None,
    };
    Ok(WaitersReport {
        relay: under.label(),
        waiters: n,
        answered_early,
        before,
        parked: parked_mem,
        bytes_per_waiter,
        wake: wake.latency(),
        park_seconds,
    })
}

/// The human-readable form.
pub fn render(reports: &[WaitersReport]) -> String {
    let mib = |m: &Option<Memory>| {
        m.map(|m| format!("{:.1} MiB", m.rss_kib as f64 / 1024.0))
            .unwrap_or_else(|| "? (no pid)".into())
    };
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.relay.clone(),
                r.waiters.to_string(),
                mib(&r.before),
                mib(&r.parked),
                r.parked
                    .map(|m| format!("{:.1} MiB", m.hwm_kib as f64 / 1024.0))
                    .unwrap_or_default(),
                r.bytes_per_waiter
                    .map(|b| format!("{:.1} KiB", b / 1024.0))
                    .unwrap_or_default(),
                r.answered_early.to_string(),
                r.wake.cell(),
            ]
        })
        .collect();
    table(
        &[
            "relay",
            "waiters",
            "RSS before",
            "RSS with waiters",
            "peak RSS",
            "per waiter",
            "answered early",
            "wake p50 / p99 / max",
        ],
        &rows,
    )
}
