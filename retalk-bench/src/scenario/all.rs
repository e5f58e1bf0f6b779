//! `all`: every scenario, against our release relay and (optionally) the
//! Python reference relay, each scenario on a freshly started relay with an
//! empty database, so no run inherits another's mail or warm caches.

use std::path::PathBuf;

use serde::Serialize;

use super::{cli, latency, read, send, verify, waiters};
use crate::env::Environment;
use crate::relay::Kind;
use crate::target_relay::{sibling, RelayArgs};

/// Options of `all`.
#[derive(Debug, Clone, clap::Args)]
pub struct AllArgs {
    /// Our relay executable (default: target/release/retalk-server next to
    /// this binary).
    #[arg(long)]
    pub ours: Option<PathBuf>,
    /// The Python reference relay (`venv/bin/retalk-server`); measured beside
    /// ours when given.
    #[arg(long)]
    pub python_relay: Option<PathBuf>,
    /// Our CLI (default: target/release/retalk next to this binary); the CLI
    /// scenario is skipped when it does not exist.
    #[arg(long)]
    pub cli: Option<PathBuf>,
    /// The Python reference CLI (`venv/bin/retalk`), measured against the
    /// Python relay when both are given.
    #[arg(long)]
    pub python_cli: Option<PathBuf>,
    /// Directory for the relays' databases.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Scenarios to run, comma-separated (default: all of them).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "verify,send,read,latency,waiters,cli"
    )]
    pub only: Vec<String>,
    /// send: timed requests per relay.
    #[arg(long, default_value_t = 100_000)]
    pub requests: usize,
    /// send: connection counts to measure on our relay, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,64,256,1024")]
    pub concurrency: Vec<usize>,
    /// send: connection counts to measure on the Python relay (a thread
    /// and a new TCP connection per request there, so fewer).
    #[arg(long, value_delimiter = ',', default_value = "8,64")]
    pub python_concurrency: Vec<usize>,
    /// send/read/latency: ciphertext bytes per message.
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
    /// send: time limit per relay, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub send_seconds: f64,
    /// read: waiting-mail levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub levels: Vec<usize>,
    /// read: time limit per level, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub read_seconds: f64,
    /// latency: messages delivered one at a time.
    #[arg(long, default_value_t = 500)]
    pub messages: usize,
    /// latency: time limit per relay, seconds (a polling relay delivers
    /// about one message per poll interval).
    #[arg(long, default_value_t = 60.0)]
    pub latency_seconds: f64,
    /// waiters: receivers waiting at once.
    #[arg(long, default_value_t = 10_000)]
    pub waiters: usize,
    /// cli: timed runs of each command.
    #[arg(long, default_value_t = 30)]
    pub cli_runs: usize,
}

/// Everything `all` measured.
#[derive(Debug, Clone, Serialize)]
pub struct AllReport {
    /// Where and when.
    pub environment: Environment,
    /// Ed25519 ceiling.
    pub verify: Option<verify::VerifyReport>,
    /// send_message throughput.
    pub send: Vec<send::SendReport>,
    /// read_messages under stored mail.
    pub read: Vec<read::ReadReport>,
    /// Delivery latency.
    pub latency: Vec<latency::LatencyReport>,
    /// Idle waiters' memory.
    pub waiters: Vec<waiters::WaitersReport>,
    /// CLI wall times.
    pub cli: Vec<cli::CliReport>,
    /// Scenarios that could not run, and why.
    pub skipped: Vec<String>,
    /// Load average after the run (the environment has it before).
    pub load_after: String,
}

/// Runs everything; prints each table as soon as its scenario ends.
pub async fn run(args: &AllArgs) -> Result<AllReport, String> {
    let ours = args
        .ours
        .clone()
        .unwrap_or_else(|| sibling("retalk-server"));
    if !ours.exists() {
        return Err(format!(
            "our relay {} does not exist: cargo build --release -p retalk-server",
            ours.display()
        ));
    }
    let mut relays = vec![(Kind::Ours, ours)];
    if let Some(p) = &args.python_relay {
        relays.push((Kind::Python, p.clone()));
    }
    let wants = |s: &str| args.only.iter().any(|o| o == s);
    let spawn =
        |kind: Kind, bin: &PathBuf| RelayArgs::spawning(kind, bin, args.work_dir.as_deref());
    let mut report = AllReport {
        environment: Environment::read(),
        verify: None,
        send: Vec::new(),
        read: Vec::new(),
        latency: Vec::new(),
        waiters: Vec::new(),
        cli: Vec::new(),
        skipped: Vec::new(),
        load_after: String::new(),
    };
    println!("{}", report.environment.render());

    if wants("verify") {
        let r = verify::run(&verify::VerifyArgs {
            seconds: 3.0,
            batch: 64,
            body_bytes: args.body_bytes,
        })?;
        println!("## verify\n\n{}", verify::render(&r));
        report.verify = Some(r);
    }
    if wants("send") {
        for (kind, bin) in &relays {
            let counts = match kind {
                Kind::Ours => &args.concurrency,
                Kind::Python => &args.python_concurrency,
            };
            for &c in counts {
                let a = send::SendArgs {
                    relay: spawn(*kind, bin),
                    load: send::SendLoad {
                        requests: args.requests,
                        concurrency: c,
                        body_bytes: args.body_bytes,
                        users: 200,
                        warmup: 2_000,
                        max_seconds: args.send_seconds,
                    },
                };
                match send::run(&a).await {
                    Ok(r) => report.send.push(r),
                    Err(e) => report
                        .skipped
                        .push(format!("send on {}: {e}", kind.label())),
                }
            }
        }
        println!("## send\n\n{}", send::render(&report.send));
    }
    if wants("read") {
        for (kind, bin) in &relays {
            let a = read::ReadArgs {
                relay: spawn(*kind, bin),
                levels: args.levels.clone(),
                mailbox: 10,
                iterations: 200,
                warmup: 5,
                max_seconds: args.read_seconds,
                background_users: 1_000,
                body_bytes: args.body_bytes,
                fill: read::FillMode::Auto,
            };
            match read::run(&a).await {
                Ok(r) => report.read.push(r),
                Err(e) => report
                    .skipped
                    .push(format!("read on {}: {e}", kind.label())),
            }
        }
        println!("## read\n\n{}", read::render(&report.read));
    }
    if wants("latency") {
        for (kind, bin) in &relays {
            let a = latency::LatencyArgs {
                relay: spawn(*kind, bin),
                messages: args.messages,
                wait: 30,
                gap_ms: 20,
                body_bytes: args.body_bytes,
                poll_interval: 2.0,
                max_seconds: args.latency_seconds,
            };
            match latency::run(&a).await {
                Ok(r) => report.latency.push(r),
                Err(e) => report
                    .skipped
                    .push(format!("latency on {}: {e}", kind.label())),
            }
        }
        println!("## latency\n\n{}", latency::render(&report.latency));
    }
    if wants("waiters") {
        for (kind, bin) in &relays {
            let a = waiters::WaitersArgs {
                relay: spawn(*kind, bin),
                waiters: args.waiters,
                wait: 60,
                settle_seconds: 3.0,
                probes: 50,
            };
            match waiters::run(&a).await {
                Ok(r) => report.waiters.push(r),
                Err(e) => report
                    .skipped
                    .push(format!("waiters on {}: {e}", kind.label())),
            }
        }
        println!("## waiters\n\n{}", waiters::render(&report.waiters));
    }
    if wants("cli") {
        let ours_cli = args.cli.clone().unwrap_or_else(|| sibling("retalk"));
        let mut runs = Vec::new();
        if ours_cli.exists() {
            runs.push((relays[0].clone(), ours_cli));
        } else {
            report
                .skipped
                .push(format!("cli: {} does not exist", ours_cli.display()));
        }
        if let (Some(py_cli), Some(py_relay)) = (&args.python_cli, relays.get(1)) {
            runs.push((py_relay.clone(), py_cli.clone()));
        }
        for ((kind, bin), cli_bin) in runs {
            let a = cli::CliArgs {
                relay: spawn(kind, &bin),
                cli: Some(cli_bin.clone()),
                runs: args.cli_runs,
                pipe_messages: args.cli_runs,
                pipe_timeout: 15.0,
                follow_interval: None,
                pipe_gap_ms: 50,
            };
            let mut under = a.relay.open().await.map_err(|e| e.to_string())?;
            let witness = cli::witness_for(&mut under).await?;
            match tokio::task::block_in_place(|| cli::run_on(&under, &a, witness.as_ref())) {
                Ok(r) => report.cli.push(r),
                Err(e) => report.skipped.push(format!(
                    "cli {} on {}: {e}",
                    cli_bin.display(),
                    kind.label()
                )),
            }
        }
        println!("## cli\n\n{}", cli::render(&report.cli));
    }
    report.load_after = crate::env::loadavg();
    for s in &report.skipped {
        println!("skipped: {s}");
    }
    println!("load average after: {}", report.load_after);
    Ok(report)
}
