//! `replicas`: our relay as N replicas on one PostgreSQL database.
//!
//! Starts `--replicas` relay processes sharing a fresh database on the
//! PostgreSQL server at `--postgres` (created here, dropped afterwards),
//! all accepting one audience as behind a load balancer, and measures:
//!
//! * durable `send_message` throughput with the connections spread over
//!   the replicas (connection i to replica i mod N), and where the time
//!   goes: CPU per send of the relays, of the PostgreSQL server processes
//!   and of this generator, and the server's own counters of commits and
//!   WAL flushes per send (`pg_stat_database`, `pg_stat_wal`);
//! * cross-replica wake-up latency: a receiver waiting in `read_messages`
//!   on the last replica, a sender on the first; from the start of the
//!   send to the receiver holding the message (the durable write, the
//!   commit's NOTIFY, the wake-up and the re-read).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::NoTls;

use crate::relay::Managed;
use crate::scenario::latency::{deliveries, LatencyArgs};
use crate::scenario::send::{signed_sends, SendLoad};
use crate::stats::{fmt_ms, table, Errors, Latency};
use crate::target_relay::{sibling, RelayArgs};
use crate::wire::{burst_over, now_secs, User};

/// Options of the `replicas` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicasArgs {
    /// A PostgreSQL server this benchmark may create and drop a database
    /// on, as a URL to an existing database, e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres. Loopback only.
    #[arg(long)]
    pub postgres: String,
    /// Relay processes sharing the database.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// Our relay executable (default: target/release/retalk-server next to
    /// this binary).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Measure::Both)]
    pub measure: Measure,
    #[command(flatten)]
    pub load: SendLoad,
    /// Messages delivered one at a time for the wake-up latency.
    #[arg(long, default_value_t = 500)]
    pub wakeups: usize,
    /// Pause between a delivery and the next send, milliseconds (so the
    /// receiver's next read is already waiting).
    #[arg(long, default_value_t = 20)]
    pub gap_ms: u64,
}

/// Which parts `replicas` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    /// Durable send throughput.
    Send,
    /// Cross-replica wake-up latency.
    Wakeup,
    /// Both, throughput first.
    Both,
}

/// Throughput through the replicas.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Requests answered in the timed phase.
    pub requests: u64,
    /// Of which refused or failed.
    pub errors: Errors,
    /// Timed-phase wall time, seconds.
    pub seconds: f64,
    /// Successful (durable) sends per second.
    pub per_second: f64,
    /// Per-request latency.
    pub latency: Latency,
    /// CPU of all replicas per answered request, microseconds.
    pub relay_cpu_us: f64,
    /// CPU of the PostgreSQL server's processes per answered request,
    /// microseconds (processes that exited meanwhile are not counted).
    pub postgres_cpu_us: Option<f64>,
    /// This generator's CPU per answered request, microseconds.
    pub client_cpu_us: f64,
    /// Transactions committed in the database per answered request.
    pub commits_per_request: Option<f64>,
    /// WAL flushes (`pg_stat_wal.wal_sync`, server-wide) per answered
    /// request.
    pub wal_syncs_per_request: Option<f64>,
    /// Machine load average when the phase ended.
    pub load: String,
}

/// Wake-up latency across replicas.
#[derive(Debug, Clone, Serialize)]
pub struct Wakeup {
    /// Sender's replica (1-based) and receiver's.
    pub path: String,
    /// Send start to the receiver holding the message.
    pub delivery: Latency,
    /// The sender's round trip.
    pub send: Latency,
    /// Messages that did not arrive in time.
    pub lost: u64,
    /// Machine load average when the phase ended.
    pub load: String,
}

/// What `replicas` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicasReport {
    /// Relay processes.
    pub replicas: usize,
    /// Connections of the throughput phase.
    pub concurrency: usize,
    /// Ciphertext bytes per message.
    pub body_bytes: usize,
    /// The server's version and durability settings.
    pub server: String,
    /// Throughput, when measured.
    pub throughput: Option<Throughput>,
    /// Wake-up latency, when measured.
    pub wakeup: Option<Wakeup>,
}

/// The URL `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("--postgres must be a postgres:// URL, not {url:?}"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// CPU seconds of every process named `postgres` (the server and its
/// backends).
fn postgres_cpu() -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            if let Ok(c) = crate::relay::cpu_seconds(pid) {
                total += c;
                any = true;
            }
        }
    }
    any.then_some(total)
}

/// (commits in `db`, server-wide WAL syncs).
async fn counters(admin: &tokio_postgres::Client, db: &str) -> (Option<i64>, Option<i64>) {
    // The statistics are a snapshot per transaction: start afresh.
    let _ = admin.batch_execute("SELECT pg_stat_clear_snapshot()").await;
    let commits = admin
        .query_one(
            "SELECT xact_commit::int8 FROM pg_stat_database WHERE datname = $1::text",
            &[&db],
        )
        .await
        .ok()
        .map(|r| r.get(0));
    let syncs = admin
        .query_one("SELECT wal_sync::int8 FROM pg_stat_wal", &[])
        .await
        .ok()
        .map(|r| r.get(0));
    (commits, syncs)
}

/// Runs the scenario.
pub async fn run(args: &ReplicasArgs) -> Result<ReplicasReport, String> {
    if args.replicas == 0 {
        return Err("--replicas must be at least 1".into());
    }
    let admin = connect(&args.postgres).await?;
    let server = {
        let row = admin
            .query_one(
                "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit')",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        let (v, f, s): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let v = v.split(" on ").next().unwrap_or(&v).to_owned();
        format!("{v}, fsync={f}, synchronous_commit={s}")
    };
    let name = format!(
        "retalk_bench_{}_{}",
        std::process::id(),
        now_secs() % 1_000_000
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("cannot create database {name}: {e}"))?;
    let url = with_database(&args.postgres, &name)?;
    let result = measure(args, &admin, &url, &name, server).await;
    // The replicas are stopped by now (dropped inside `measure`).
    for _ in 0..20 {
        match admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
        {
            Ok(()) => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    result
}

async fn measure(
    args: &ReplicasArgs,
    admin: &tokio_postgres::Client,
    url: &str,
    db: &str,
    server: String,
) -> Result<ReplicasReport, String> {
    let bin = args
        .relay_bin
        .clone()
        .unwrap_or_else(|| sibling("retalk-server"));
    let audience = "http://replicas.retalk-bench.invalid";
    let mut replicas = Vec::new();
    for _ in 0..args.replicas {
        replicas.push(
            Managed::start_replica(&bin, url, audience)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    eprintln!(
        "replicas: {} relay(s) on database {db} ({server})",
        replicas.len()
    );
    let mut report = ReplicasReport {
        replicas: args.replicas,
        concurrency: args.load.concurrency,
        body_bytes: args.load.body_bytes,
        server,
        throughput: None,
        wakeup: None,
    };
    if args.measure != Measure::Wakeup {
        report.throughput = Some(throughput(args, admin, db, &replicas).await?);
    }
    if args.measure != Measure::Send {
        let first = &replicas[0].relay;
        let last = &replicas[replicas.len() - 1].relay;
        let latency = LatencyArgs {
            relay: RelayArgs {
                relay: None,
                audience: None,
                relay_pid: None,
                spawn: None,
                relay_bin: None,
                work_dir: None,
            },
            messages: args.wakeups,
            wait: 30,
            gap_ms: args.gap_ms,
            body_bytes: args.load.body_bytes,
            poll_interval: 0.0,
            max_seconds: args.load.max_seconds,
        };
        eprintln!(
            "replicas: {} deliveries from replica 1 to a receiver waiting on replica {}",
            args.wakeups,
            replicas.len()
        );
        let d = deliveries(first, last, &latency).await?;
        report.wakeup = Some(Wakeup {
            path: format!("1 -> {}", replicas.len()),
            delivery: d.delivery.latency(),
            send: d.send.latency(),
            lost: d.lost,
            load: crate::env::loadavg(),
        });
    }
    drop(replicas);
    Ok(report)
}

async fn throughput(
    args: &ReplicasArgs,
    admin: &tokio_postgres::Client,
    db: &str,
    replicas: &[Managed],
) -> Result<Throughput, String> {
    let relay = &replicas[0].relay;
    let targets: Vec<_> = replicas.iter().map(|m| m.relay.target.clone()).collect();
    let load = &args.load;
    let users = Arc::new(User::many(load.users.max(2)));
    relay.publish_all(&users, 32).await?;
    let total = load.warmup + load.requests;
    eprintln!("replicas: signing {total} send_message requests");
    let sign_start = Instant::now();
    let mut all = signed_sends(relay, &users, total, load.body_bytes, now_secs());
    let timed = all.split_off(load.warmup.min(all.len()));
    let window_end = sign_start + Duration::from_secs(140);
    if !all.is_empty() {
        let w = burst_over(&targets, Arc::new(all), load.concurrency, window_end).await;
        if w.errors.count == w.done {
            return Err(format!(
                "every warm-up request was refused: {:?}",
                w.errors.samples
            ));
        }
    }
    let deadline = (Instant::now() + Duration::from_secs_f64(load.max_seconds)).min(window_end);
    eprintln!(
        "replicas: firing {} sends over {} connections to {} replica(s)",
        timed.len(),
        load.concurrency,
        replicas.len()
    );
    let relay_cpu = |ms: &[Managed]| -> f64 {
        ms.iter()
            .filter_map(|m| m.pid().and_then(|p| crate::relay::cpu_seconds(p).ok()))
            .sum()
    };
    let (commits0, syncs0) = counters(admin, db).await;
    let pg0 = postgres_cpu();
    let r0 = relay_cpu(replicas);
    let own0 = crate::relay::own_cpu_seconds();
    let b = burst_over(&targets, Arc::new(timed), load.concurrency, deadline).await;
    let own = crate::relay::own_cpu_seconds() - own0;
    let relays = relay_cpu(replicas) - r0;
    let pg = pg0.zip(postgres_cpu()).map(|(a, b)| b - a);
    // The commit counter is reported when a backend's transaction ends:
    // give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (commits1, syncs1) = counters(admin, db).await;
    let done = b.done.max(1) as f64;
    let per = |cpu: f64| cpu * 1e6 / done;
    let secs = b.elapsed.as_secs_f64();
    Ok(Throughput {
        requests: b.done,
        per_second: (b.done - b.errors.count) as f64 / secs,
        errors: b.errors,
        seconds: secs,
        latency: b.latency.latency(),
        relay_cpu_us: per(relays),
        postgres_cpu_us: pg.map(per),
        client_cpu_us: per(own),
        commits_per_request: commits0.zip(commits1).map(|(a, b)| (b - a) as f64 / done),
        wal_syncs_per_request: syncs0.zip(syncs1).map(|(a, b)| (b - a) as f64 / done),
        load: crate::env::loadavg(),
    })
}

/// The human-readable form.
pub fn render(r: &ReplicasReport) -> String {
    let mut out = format!(
        "{} replica(s), {} connections, {} body bytes; {}\n",
        r.replicas, r.concurrency, r.body_bytes, r.server
    );
    let opt = |v: Option<f64>, unit: &str| {
        v.map(|v| format!("{v:.0}{unit}"))
            .unwrap_or_else(|| "?".into())
    };
    if let Some(t) = &r.throughput {
        out.push_str(&table(
            &[
                "sends/s",
                "requests",
                "errors",
                "p50",
                "p99",
                "max",
                "relays CPU/req",
                "postgres CPU/req",
                "generator CPU/req",
                "commits/req",
                "WAL syncs/req",
                "load after",
            ],
            &[vec![
                format!("{:.0}", t.per_second),
                t.requests.to_string(),
                t.errors.count.to_string(),
                fmt_ms(t.latency.p50_ms),
                fmt_ms(t.latency.p99_ms),
                fmt_ms(t.latency.max_ms),
                format!("{:.0} µs", t.relay_cpu_us),
                opt(t.postgres_cpu_us, " µs"),
                format!("{:.0} µs", t.client_cpu_us),
                t.commits_per_request
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "?".into()),
                t.wal_syncs_per_request
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "?".into()),
                t.load.clone(),
            ]],
        ));
        for (text, n) in &t.errors.samples {
            out.push_str(&format!("  {n} x {text}\n"));
        }
    }
    if let Some(w) = &r.wakeup {
        out.push_str(&table(
            &[
                "replicas (send -> wait)",
                "messages",
                "wake-up p50 / p99 / max",
                "send round trip p50 / p99 / max",
                "lost",
                "load after",
            ],
            &[vec![
                w.path.clone(),
                w.delivery.samples.to_string(),
                w.delivery.cell(),
                w.send.cell(),
                w.lost.to_string(),
                w.load.clone(),
            ]],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "b").unwrap(),
            "postgres://u@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgresql://u:p@h:1/x?sslmode=disable", "b").unwrap(),
            "postgresql://u:p@h:1/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:1", "b").unwrap(),
            "postgres://u@h:1/b"
        );
        assert!(with_database("host=h", "b").is_err());
    }
}
