//! `send`: throughput and latency of signed `send_message`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{fmt_ms, table, Errors, Latency};
use crate::target_relay::{RelayArgs, UnderTest};
use crate::wire::{burst, message, now_secs, sign_parallel, Relay, User};

/// Options of the `send` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    #[command(flatten)]
    pub load: SendLoad,
}

/// The load of a send throughput run (also `replicas`').
#[derive(Debug, Clone, clap::Args)]
pub struct SendLoad {
    /// Signed requests in the timed phase.
    #[arg(long, default_value_t = 100_000)]
    pub requests: usize,
    /// Connections sending at once (each waits for its answer before
    /// sending again).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Ciphertext bytes per message (the body on the wire is its base64).
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
    /// Distinct users; each request goes from one to another.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Untimed requests sent first, to warm caches, connections and the
    /// relay's database.
    #[arg(long, default_value_t = 2_000)]
    pub warmup: usize,
    /// Stop the timed phase after this many seconds even if requests are
    /// left (slow relays). Requests are signed before the clock starts and
    /// relays accept a timestamp for 150 s, so the phase also stops 140 s
    /// after signing began, whatever this says.
    #[arg(long, default_value_t = 60.0)]
    pub max_seconds: f64,
}

/// `total` signed sends between `users`, all with timestamp `ts` (signed
/// on every core, before any clock starts).
pub fn signed_sends(
    relay: &Relay,
    users: &[User],
    total: usize,
    body_bytes: usize,
    ts: i64,
) -> Vec<Vec<u8>> {
    let n = users.len();
    sign_parallel(total, |i| {
        let from = &users[i % n];
        // A stride coprime with most user counts spreads each sender's mail
        // over many mailboxes.
        let to = &users[(i * 7 + 1 + i / n) % n];
        let to = if to.id == from.id {
            &users[(i + 1) % n]
        } else {
            to
        };
        relay.signed_at(from, &message(&to.id, body_bytes, i as u64), ts)
    })
}

/// What `send` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    /// The relay measured.
    pub relay: String,
    /// Connections.
    pub concurrency: usize,
    /// Ciphertext bytes per message.
    pub body_bytes: usize,
    /// Requests answered in the timed phase.
    pub requests: u64,
    /// Of which refused or failed.
    pub errors: Errors,
    /// Refusals during the untimed warm-up.
    pub warmup_errors: Errors,
    /// Timed-phase wall time, seconds.
    pub seconds: f64,
    /// Successful sends per second.
    pub per_second: f64,
    /// Per-request latency.
    pub latency: Latency,
    /// Whether the time limit ended the phase early.
    pub truncated: bool,
    /// Seconds spent signing the requests (before the clock).
    pub signing_seconds: f64,
    /// Connections the relay made the client reopen.
    pub reconnects: u64,
    /// Relay CPU time per answered request in the timed phase,
    /// microseconds (user + system, all its threads; when its pid is known).
    pub relay_cpu_us: Option<f64>,
    /// This load generator's CPU time per answered request, microseconds.
    pub client_cpu_us: f64,
    /// Machine load average when the timed phase ended.
    pub load: String,
}

/// Runs the scenario.
pub async fn run(args: &SendArgs) -> Result<SendReport, String> {
    let under = args.relay.open().await.map_err(|e| e.to_string())?;
    run_on(&under, args).await
}

/// Runs the scenario against an open relay.
pub async fn run_on(under: &UnderTest, args: &SendArgs) -> Result<SendReport, String> {
    let relay = under.relay();
    let args = &args.load;
    let users = Arc::new(User::many(args.users.max(2)));
    relay.publish_all(&users, 32).await?;
    let total = args.warmup + args.requests;
    eprintln!(
        "send: signing {total} send_message requests ({} body bytes) for {}",
        args.body_bytes,
        under.label()
    );
    let sign_start = Instant::now();
    let all = signed_sends(relay, &users, total, args.body_bytes, now_secs());
    let signing = sign_start.elapsed();
    let mut all = all;
    let timed = all.split_off(args.warmup.min(all.len()));
    let window_end = sign_start + Duration::from_secs(140);
    let mut warmup_errors = Errors::default();
    if !all.is_empty() {
        let w = burst(&relay.target, Arc::new(all), args.concurrency, window_end).await;
        // A relay that refuses some requests under load is measured (and
        // its refusals reported); one that refuses everything is misused.
        if w.errors.count == w.done {
            return Err(format!(
                "every warm-up request was refused: {:?}",
                w.errors.samples
            ));
        }
        warmup_errors = w.errors;
    }
    let deadline = (Instant::now() + Duration::from_secs_f64(args.max_seconds)).min(window_end);
    eprintln!(
        "send: firing {} requests over {} connections",
        timed.len(),
        args.concurrency
    );
    let relay_cpu = under.cpu_seconds();
    let own_cpu = crate::relay::own_cpu_seconds();
    let b = burst(&relay.target, Arc::new(timed), args.concurrency, deadline).await;
    let own_cpu = crate::relay::own_cpu_seconds() - own_cpu;
    let relay_cpu = relay_cpu.zip(under.cpu_seconds()).map(|(a, b)| b - a);
    let secs = b.elapsed.as_secs_f64();
    let per = |cpu: f64| cpu * 1e6 / b.done.max(1) as f64;
    Ok(SendReport {
        relay: under.label(),
        concurrency: args.concurrency,
        body_bytes: args.body_bytes,
        requests: b.done,
        per_second: (b.done - b.errors.count) as f64 / secs,
        errors: b.errors,
        warmup_errors,
        seconds: secs,
        latency: b.latency.latency(),
        truncated: b.truncated,
        signing_seconds: signing.as_secs_f64(),
        reconnects: b.connects,
        relay_cpu_us: relay_cpu.map(per),
        client_cpu_us: per(own_cpu),
        load: crate::env::loadavg(),
    })
}

/// The human-readable form.
pub fn render(reports: &[SendReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.relay.clone(),
                r.concurrency.to_string(),
                r.body_bytes.to_string(),
                format!(
                    "{}{}",
                    r.requests,
                    if r.truncated { " (time limit)" } else { "" }
                ),
                r.errors.count.to_string(),
                format!("{:.0}", r.per_second),
                fmt_ms(r.latency.p50_ms),
                fmt_ms(r.latency.p99_ms),
                fmt_ms(r.latency.max_ms),
                r.relay_cpu_us
                    .map(|c| format!("{c:.0} µs"))
                    .unwrap_or_else(|| "?".into()),
                format!("{:.0} µs", r.client_cpu_us),
                r.load.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "relay",
            "conns",
            "body B",
            "requests",
            "errors",
            "sends/s",
            "p50",
            "p99",
            "max",
            "relay CPU/req",
            "generator CPU/req",
            "load after",
        ],
        &rows,
    );
    for r in reports {
        for (text, n) in &r.errors.samples {
            out.push_str(&format!("  {}: {n} x {text}\n", r.relay));
        }
    }
    out
}
