//! `retalk-bench`: a load generator and benchmark suite that speaks the
//! retalk wire protocol to any relay URL, so the same run measures our
//! relay and the Python reference relay side by side on one machine.
//!
//! See `docs/benchmarks.md` for the results and how they were taken.

// The benchmark reads CPU time, raises file limits and signals the relay
// through libc; each block has a SAFETY note. No other crate needs this.
#![allow(unsafe_code)]

mod env;
mod fill;
mod http;
mod relay;
mod scenario;
mod stats;
mod target_relay;
mod wire;
mod witness;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde::Serialize;

use scenario::{abuse, all, cli, latency, library, read, replicas, send, verify, waiters};

/// Load generator and benchmarks for retalk relays.
///
/// Every scenario speaks the wire protocol (signed requests, both field
/// dialects) to a relay given by URL (--relay) or started here (--spawn ours
/// | --spawn python --relay-bin PATH), so the same command measures our
/// relay and the Python reference. Only loopback addresses make sense: the
/// generator shares the machine with the relay, and reports say how loaded
/// the machine was. Benchmark release builds: cargo build --release
/// -p retalk-bench -p retalk-server -p retalk-cli.
#[derive(Parser)]
#[command(name = "retalk-bench", version, about, long_about)]
struct Args {
    /// Also write the results as JSON to this file ("-" for stdout).
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Threads of the load generator's async runtime. One leaves the other
    /// core of a two-core machine to the relay.
    #[arg(long, global = true, default_value_t = 1)]
    client_threads: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Throughput and latency of signed send_message at a chosen
    /// concurrency and body size. All requests are signed before the timed
    /// phase (the generator only sends bytes), then fired over keep-alive
    /// connections in a closed loop.
    Send(send::SendArgs),
    /// read_messages latency for a user with 10 messages while other users
    /// have 10 thousand, 100 thousand and 1 million waiting. A relay
    /// without an index on the recipient scans all mail on every read.
    Read(read::ReadArgs),
    /// End-to-end delivery latency: sender starts send_message -> a
    /// receiver waiting in read_messages (wait) holds the message. Relays
    /// without wait are measured with 2 s polling, as reference clients do.
    Latency(latency::LatencyArgs),
    /// Relay resident memory with 10,000 idle receivers each waiting in
    /// read_messages on its own connection, and how fast one is woken.
    Waiters(waiters::WaitersArgs),
    /// The retalk command: wall time of one `retalk send` to a known peer,
    /// of one `retalk receive` of an empty mailbox, and delivery latency
    /// from `retalk send` to a `retalk receive --follow --json` reader.
    Cli(cli::CliArgs),
    /// The ceiling: Ed25519 verifications per second on this machine (1
    /// thread and all cores, single and batch), and the full per-request
    /// parse + signature check a relay must do.
    Verify(verify::VerifyArgs),
    /// Where the client library's time goes: open (with and without the
    /// Argon2id cost), send, and a `retalk send`'s open + publish + send.
    Library(library::LibraryArgs),
    /// A polite client's latency alone and beside an abuser (a flood of
    /// signed sends, badly signed requests, slowloris connections).
    Abuse(abuse::AbuseArgs),
    /// Our relay as several replicas on one PostgreSQL database (created
    /// and dropped here on the server at --postgres): durable send
    /// throughput spread over the replicas, where the time goes (CPU of
    /// relays, PostgreSQL and generator; commits and WAL flushes per send),
    /// and the wake-up latency of a receiver waiting on another replica
    /// than the sender's.
    Replicas(replicas::ReplicasArgs),
    /// Everything above, each scenario on a freshly started relay: ours
    /// and, with --python-relay, the Python reference, side by side.
    All(all::AllArgs),
}

fn emit<T: Serialize>(path: &Option<PathBuf>, value: &T) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    if path.as_os_str() == "-" {
        println!("{text}");
        Ok(())
    } else {
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}

async fn run(args: Args) -> Result<(), String> {
    let env = env::Environment::read();
    match &args.scenario {
        Scenario::All(_) => {}
        _ => println!("{}", env.render()),
    }
    match &args.scenario {
        Scenario::Send(a) => {
            let r = send::run(a).await?;
            println!("{}", send::render(std::slice::from_ref(&r)));
            emit(&args.json, &(env, r))
        }
        Scenario::Read(a) => {
            let r = read::run(a).await?;
            println!("{}", read::render(std::slice::from_ref(&r)));
            emit(&args.json, &(env, r))
        }
        Scenario::Latency(a) => {
            let r = latency::run(a).await?;
            println!("{}", latency::render(std::slice::from_ref(&r)));
            emit(&args.json, &(env, r))
        }
        Scenario::Waiters(a) => {
            let r = waiters::run(a).await?;
            println!("{}", waiters::render(std::slice::from_ref(&r)));
            emit(&args.json, &(env, r))
        }
        Scenario::Cli(a) => {
            let r = cli::run(a).await?;
            println!("{}", cli::render(std::slice::from_ref(&r)));
            emit(&args.json, &(env, r))
        }
        Scenario::Verify(a) => {
            let r = verify::run(a)?;
            println!("{}", verify::render(&r));
            emit(&args.json, &(env, r))
        }
        Scenario::Abuse(a) => {
            let r = abuse::run(a).await?;
            println!("{}", abuse::render(&r));
            emit(&args.json, &(env, r))
        }
        Scenario::Replicas(a) => {
            let r = replicas::run(a).await?;
            println!("{}", replicas::render(&r));
            emit(&args.json, &(env, r))
        }
        Scenario::Library(a) => {
            let r = library::run(a).await?;
            println!("{}", library::render(&r));
            emit(&args.json, &(env, r))
        }
        Scenario::All(a) => {
            let r = all::run(a).await?;
            emit(&args.json, &r)
        }
    }
}

fn main() {
    let args = Args::parse();
    // Waiters hold a socket each, and relays started here inherit this.
    waiters::raise_fd_limit(65_536);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("retalk-bench: {e}");
        std::process::exit(1);
    }
}
