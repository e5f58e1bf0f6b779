//! `abuse`: does one abusive client hurt a well-behaved one? A polite
//! client sends at a steady rate and its latency is recorded twice: alone,
//! then while an abuser floods the relay with signed sends from one
//! identity, with requests whose signatures fail, and with connections that
//! send half a request and then trickle (slowloris). The target (issue 15)
//! is the polite client's p99 under 50 ms during the abuse.
//!
//! The relay's own limits decide the outcome, so run it as an operator
//! would, e.g.
//!
//!     RETALK_SERVER_RATE_LIMIT=6000 retalk-bench abuse --spawn ours
//!
//! (a spawned relay inherits the `RETALK_SERVER_*` environment), or point
//! `--relay URL` at one started by hand.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::http::{Conn, Target};
use crate::stats::{table, Latency, Recorder};
use crate::target_relay::{RelayArgs, UnderTest};
use crate::wire::{message, Relay, User};

/// Options of the `abuse` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct AbuseArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Seconds of each phase (polite client alone, then under abuse).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// The polite client's sends per second.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Connections the abuser floods signed sends over (closed loop).
    #[arg(long, default_value_t = 32)]
    pub flood: usize,
    /// Connections the abuser sends badly signed requests over.
    #[arg(long, default_value_t = 8)]
    pub bad_signatures: usize,
    /// Connections the abuser opens and trickles (half a request each).
    #[arg(long, default_value_t = 200)]
    pub slow: usize,
    /// Local address the abuser's connections come from. The relay counts
    /// failed verifications per client address, and on loopback every
    /// client is 127.0.0.1 unless told otherwise: the polite client would
    /// then share the abuser's budget and be refused with it. Any 127.x
    /// address works on Linux; give 127.0.0.1 to share the address on
    /// purpose.
    #[arg(long, default_value = "127.0.0.2")]
    pub abuser_address: std::net::IpAddr,
}

/// One phase's polite latency.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// What ran beside the polite client.
    pub name: String,
    /// The polite client's per-request latency.
    pub latency: Latency,
    /// Polite requests that failed (any non-200).
    pub polite_errors: u64,
}

/// What `abuse` measured.
#[derive(Debug, Clone, Serialize)]
pub struct AbuseReport {
    /// The relay measured.
    pub relay: String,
    /// Alone, then under abuse.
    pub phases: Vec<Phase>,
    /// Flood answers by HTTP status during the abuse phase.
    pub flood_statuses: Vec<(u16, u64)>,
    /// Badly signed requests answered during the abuse phase, by status.
    pub bad_statuses: Vec<(u16, u64)>,
    /// Slow connections that were open when the phase ended.
    pub slow_still_open: u64,
    /// Whether the polite p99 under abuse is below 50 ms.
    pub target_met: bool,
    /// Machine load average at the end.
    pub load: String,
}

/// Runs the scenario.
pub async fn run(args: &AbuseArgs) -> Result<AbuseReport, String> {
    let under = args.relay.open().await.map_err(|e| e.to_string())?;
    run_on(&under, args).await
}

/// The polite client: `rate` sends per second from `from` to `to` for
/// `seconds`, each signed just before it goes, one connection.
async fn polite(relay: &Relay, from: &User, to: &User, rate: u32, seconds: f64) -> (Recorder, u64) {
    let mut conn = Conn::new(&relay.target);
    let _ = conn.connect().await;
    let mut rec = Recorder::default();
    let mut errors = 0;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut next = Instant::now();
    let mut seq = 0u64;
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        next += period;
        let req = relay.signed(from, &message(&to.id, 256, seq));
        seq += 1;
        let t = Instant::now();
        match conn.request(&req).await {
            Ok(r) if r.status == 200 => rec.record(t.elapsed()),
            _ => {
                rec.record(t.elapsed());
                errors += 1;
            }
        }
    }
    (rec, errors)
}

/// Counts of answers by status, shared by abuser tasks.
#[derive(Default)]
struct Statuses(std::sync::Mutex<std::collections::BTreeMap<u16, u64>>);

impl Statuses {
    fn add(&self, status: u16) {
        *self.0.lock().unwrap().entry(status).or_default() += 1;
    }
    fn list(&self) -> Vec<(u16, u64)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

/// What one abusive connection sends, as fast as answers come; `users[2]`
/// abuses, `users[3]` is the victim.
#[derive(Clone, Copy)]
enum Abuse {
    /// Signed 4 KiB sends from one identity.
    Flood,
    /// Correctly built 256-byte sends whose signature is corrupted.
    BadSignature,
}

/// One abusive connection from `from` until `stop`; answers counted in
/// `seen`.
fn abuser(
    relay: &Relay,
    users: Arc<Vec<User>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Statuses>,
    from: std::net::IpAddr,
    kind: Abuse,
) {
    let relay = relay.clone();
    tokio::spawn(async move {
        let mut conn = Conn::from_source(&relay.target, Some(from));
        let (size, mut seq) = match kind {
            Abuse::Flood => (4096, 1u64 << 40),
            Abuse::BadSignature => (256, 1u64 << 50),
        };
        while !stop.load(Ordering::Relaxed) {
            let mut req = relay.signed(&users[2], &message(&users[3].id, size, seq));
            seq += 1;
            if let Abuse::BadSignature = kind {
                // The signature is the only "sig" field; flip one of its
                // base64 characters.
                if let Some(i) = find(&req, b"\"sig\":\"") {
                    let at = i + 10;
                    req[at] = if req[at] == b'A' { b'B' } else { b'A' };
                }
            }
            match conn.request(&req).await {
                Ok(r) => seen.add(r.status),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    });
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Slowloris: half a request, then one header byte a second.
fn slow(target: &Target, stop: Arc<AtomicBool>, open: Arc<AtomicU64>, from: std::net::IpAddr) {
    let target = target.clone();
    tokio::spawn(async move {
        let Ok(mut s) = crate::http::connect_from(&target, from).await else {
            return;
        };
        open.fetch_add(1, Ordering::Relaxed);
        let head = "POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nX-Slow: ";
        let mut alive = s.write_all(head.as_bytes()).await.is_ok();
        while alive && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            alive = s.write_all(b"a").await.is_ok();
        }
        if !alive {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    });
}

/// Runs the scenario against an open relay.
pub async fn run_on(under: &UnderTest, args: &AbuseArgs) -> Result<AbuseReport, String> {
    let relay = under.relay();
    let users = Arc::new(User::many(4));
    relay.publish_all(&users, 8).await?;
    let (a, b) = (&users[0], &users[1]);

    eprintln!("abuse: polite client alone for {} s", args.seconds);
    let (alone, alone_errors) = polite(relay, a, b, args.rate, args.seconds).await;

    eprintln!(
        "abuse: polite client beside {} flooding, {} badly signed and {} slow connections",
        args.flood, args.bad_signatures, args.slow
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (floods, bads) = (Arc::new(Statuses::default()), Arc::new(Statuses::default()));
    let open = Arc::new(AtomicU64::new(0));
    for _ in 0..args.slow {
        slow(
            &relay.target,
            stop.clone(),
            open.clone(),
            args.abuser_address,
        );
    }
    for _ in 0..args.flood {
        abuser(
            relay,
            users.clone(),
            stop.clone(),
            floods.clone(),
            args.abuser_address,
            Abuse::Flood,
        );
    }
    for _ in 0..args.bad_signatures {
        abuser(
            relay,
            users.clone(),
            stop.clone(),
            bads.clone(),
            args.abuser_address,
            Abuse::BadSignature,
        );
    }
    // Let the abuse reach full strength before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (abused, abused_errors) = polite(relay, a, b, args.rate, args.seconds).await;
    let slow_still_open = open.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);

    let abused = abused.latency();
    Ok(AbuseReport {
        relay: under.label(),
        target_met: abused.p99_ms < 50.0 && abused_errors == 0,
        phases: vec![
            Phase {
                name: "alone".into(),
                latency: alone.latency(),
                polite_errors: alone_errors,
            },
            Phase {
                name: "under abuse".into(),
                latency: abused,
                polite_errors: abused_errors,
            },
        ],
        flood_statuses: floods.list(),
        bad_statuses: bads.list(),
        slow_still_open,
        load: crate::env::loadavg(),
    })
}

/// The report as a table.
pub fn render(r: &AbuseReport) -> String {
    let rows: Vec<Vec<String>> = r
        .phases
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.latency.cell(),
                p.latency.samples.to_string(),
                p.polite_errors.to_string(),
            ]
        })
        .collect();
    format!(
        "abuse, {}: polite client's send latency (p50 / p99 / max)\n{}\nflood answers by status: {:?}; badly signed: {:?}; slow connections still open: {}\np99 under abuse < 50 ms with no polite failure: {}",
        r.relay,
        table(&["phase", "latency", "requests", "failed"], &rows),
        r.flood_statuses,
        r.bad_statuses,
        r.slow_still_open,
        if r.target_met { "yes" } else { "NO" }
    )
}
