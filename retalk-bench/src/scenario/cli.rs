//! `cli`: what a person or script waits for when using the `retalk`
//! command: the wall time of one `retalk send` to a known peer (process
//! start, unlocking the identity with its key derivation, encryption,
//! the signed request, exit), of one `retalk receive` of an empty mailbox,
//! and the delivery latency through the real pipe: `retalk send` in one
//! process to the line appearing on the stdout of a
//! `retalk receive --follow --json` running in another, measured two ways:
//! from the moment the relay answered the sender's `send_message` (the
//! issue's definition of delivery; seen by a forwarder in front of the
//! relay, [`crate::witness`]) and from the start of the `retalk send`
//! process (what a person typing both commands waits for).
//!
//! Works with any CLI that has the reference command shapes
//! (`init DIR`, `add -s DIR NAME ID`, `send -s DIR PEER TEXT`,
//! `receive -s DIR [--follow] [--json]`, the secret in `PICKLE_SECRET`, the
//! relay in `--server`): ours and the Python reference's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{table, Latency, Recorder};
use crate::target_relay::{RelayArgs, UnderTest};
use crate::witness::Witness;

/// Options of the `cli` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct CliArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    /// The `retalk` executable to measure (default: the one next to this
    /// binary, i.e. target/release/retalk).
    #[arg(long)]
    pub cli: Option<PathBuf>,
    /// Timed runs of each command.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Messages timed through the `receive --follow --json` pipe.
    #[arg(long, default_value_t = 30)]
    pub pipe_messages: usize,
    /// Seconds to wait for a message to come out of the pipe.
    #[arg(long, default_value_t = 15.0)]
    pub pipe_timeout: f64,
    /// Start the follower with `--interval SECS` (agent-talk runs
    /// `receive --follow --interval 60`): against a relay that holds waits
    /// it must still print at once, whatever the poll period.
    #[arg(long, value_name = "SECS")]
    pub follow_interval: Option<String>,
    /// Milliseconds between two pipe messages. Above the relay's longest
    /// wait (25 s) divided by --pipe-messages, the messages also land after
    /// held waits that ran their course empty.
    #[arg(long, default_value_t = 50)]
    pub pipe_gap_ms: u64,
}

/// What `cli` measured.
#[derive(Debug, Clone, Serialize)]
pub struct CliReport {
    /// The CLI measured.
    pub cli: String,
    /// The relay it talked to.
    pub relay: String,
    /// Wall time of `retalk send` to a known peer with an open session.
    pub send: Latency,
    /// Wall time of `retalk id`: process start and unlocking the identity
    /// (the passphrase's key derivation), no network: the floor under every
    /// command.
    pub id: Latency,
    /// The client's default Argon2id derivation alone, run in this process
    /// (the part of every command's unlock that is there by design).
    pub argon2id: Latency,
    /// Wall time of `retalk receive` of an empty mailbox.
    pub receive_empty: Latency,
    /// `retalk send` start to the message line on the follower's stdout.
    pub pipe: Latency,
    /// The relay's answer to that `send_message` to the message line on the
    /// follower's stdout (not measured for a relay this tool did not start).
    pub pipe_delivery: Option<Latency>,
    /// Pipe messages that never came out.
    pub pipe_lost: u64,
    /// The follower's `--interval`, if one was given.
    pub follow_interval: Option<String>,
    /// Milliseconds between two pipe messages.
    pub pipe_gap_ms: u64,
}

const SECRET: &str = "retalk-bench secret";

struct Cli {
    bin: PathBuf,
    server: String,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("PICKLE_SECRET", SECRET)
            .env("RETALK_PASSPHRASE", SECRET)
            .env("SERVER_URL", &self.server)
            .env("RETALK_SERVER", &self.server)
            .env_remove("STORE")
            .stdin(Stdio::null());
        c
    }

    /// Runs to completion; stdout on success, the reason otherwise.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .cmd(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`retalk {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn timed(&self, args: &[&str]) -> Result<Duration, String> {
        let t = Instant::now();
        self.run(args)?;
        Ok(t.elapsed())
    }

    fn init(&self, dir: &Path, name: &str) -> Result<String, String> {
        let d = dir.to_string_lossy();
        let out = self.run(&["init", &d, "--name", name, "--server", &self.server])?;
        out.lines()
            .map(str::trim)
            .find(|l| l.len() == 32 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .ok_or_else(|| format!("`retalk init` printed no user id: {out:?}"))
    }
}

/// One Argon2id derivation exactly as the client's store does it (default
/// cost, 64 output bytes, its memory and lanes).
fn argon2id_default(passphrase: &str) -> Result<(), String> {
    retalk::StoreKeys::derive(passphrase, &[7u8; 16], retalk::KdfParams::default())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Runs the scenario.
pub async fn run(args: &CliArgs) -> Result<CliReport, String> {
    let mut under = args.relay.open().await.map_err(|e| e.to_string())?;
    let witness = witness_for(&mut under).await?;
    run_on(&under, args, witness.as_ref())
}

/// Puts a [`Witness`] in front of a relay this tool started (restarting it
/// to accept the forwarder's URL as its audience); `None` for a running
/// relay given by URL, whose audience cannot be changed from here.
pub async fn witness_for(under: &mut UnderTest) -> Result<Option<Witness>, String> {
    let UnderTest::Managed(m) = under else {
        return Ok(None);
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], m.relay.target.port));
    let witness = Witness::start(addr).map_err(|e| format!("cannot start the forwarder: {e}"))?;
    m.restart_with_audience(witness.url())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(witness))
}

/// Runs the scenario against an open relay (blocking: it waits on
/// processes).
///
/// With a `witness` (see [`witness_for`]) the clients talk to the relay
/// through it.
pub fn run_on(
    under: &UnderTest,
    args: &CliArgs,
    witness: Option<&Witness>,
) -> Result<CliReport, String> {
    let bin = args
        .cli
        .clone()
        .unwrap_or_else(|| crate::target_relay::sibling("retalk"));
    let cli = Cli {
        bin: bin.clone(),
        server: witness.map_or_else(|| under.relay().target.url.clone(), |w| w.url().to_owned()),
    };
    let tmp = tempfile::Builder::new()
        .prefix("retalk-bench-cli-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let (a, b) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let (sa, sb) = (a.to_string_lossy(), b.to_string_lossy());
    eprintln!("cli: setting up two identities with {}", bin.display());
    let ida = cli.init(&a, "alice")?;
    let idb = cli.init(&b, "bob")?;
    cli.run(&["add", "-s", &sa, "bob", &idb])?;
    cli.run(&["add", "-s", &sb, "alice", &ida])?;
    // Publish both identities' keys (the first receive does), then make bob
    // a known peer with an established session both ways: the first message
    // carries the pre-key handshake, later ones do not.
    cli.run(&["receive", "-s", &sb])?;
    cli.run(&["receive", "-s", &sa])?;
    cli.run(&["send", "-s", &sa, "bob", "hello"])?;
    cli.run(&["receive", "-s", &sb])?;
    cli.run(&["send", "-s", &sb, "alice", "hello back"])?;
    cli.run(&["receive", "-s", &sa])?;

    eprintln!(
        "cli: timing {} sends and {} empty receives",
        args.runs, args.runs
    );
    let mut send = Recorder::default();
    for i in 0..args.runs {
        send.record(cli.timed(&["send", "-s", &sa, "bob", &format!("timed {i}")])?);
    }
    cli.run(&["receive", "-s", &sb])?;
    let mut id = Recorder::default();
    for _ in 0..args.runs {
        id.record(cli.timed(&["id", "-s", &sa])?);
    }
    let mut argon2id = Recorder::default();
    for _ in 0..args.runs {
        let t = Instant::now();
        argon2id_default(SECRET)?;
        argon2id.record(t.elapsed());
    }
    let mut receive_empty = Recorder::default();
    for _ in 0..args.runs {
        receive_empty.record(cli.timed(&["receive", "-s", &sb])?);
    }

    eprintln!(
        "cli: timing {} messages through receive --follow --json",
        args.pipe_messages
    );
    let mut follow = vec!["receive", "-s", &sb, "--follow", "--json"];
    if let Some(i) = &args.follow_interval {
        follow.extend(["--interval", i.as_str()]);
    }
    let mut follower = cli
        .cmd(&follow)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = follower.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((line, Instant::now())).is_err() {
                break;
            }
        }
    });
    if let Some(w) = witness {
        w.watch_sender(&ida);
    }
    // Let the follower start and reach its waiting read.
    std::thread::sleep(Duration::from_millis(1500));
    while rx.try_recv().is_ok() {}
    let mut pipe = Recorder::default();
    let mut pipe_delivery = Recorder::default();
    let mut pipe_lost = 0;
    for i in 0..args.pipe_messages {
        let text = format!("pipe-{i}-{}", rand::random::<u32>());
        if let Some(w) = witness {
            w.clear();
        }
        let t0 = Instant::now();
        cli.run(&["send", "-s", &sa, "bob", &text])?;
        let deadline = t0 + Duration::from_secs_f64(args.pipe_timeout);
        let mut got = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((line, at)) if line.contains(&text) => {
                    got = Some(at);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        match got {
            Some(at) => {
                pipe.record(at - t0);
                let answered = witness.and_then(Witness::last_send_answer);
                if let Some(answered) = answered {
                    pipe_delivery.record(at.saturating_duration_since(answered));
                }
            }
            None => pipe_lost += 1,
        }
        std::thread::sleep(Duration::from_millis(args.pipe_gap_ms));
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let parts: Vec<_> = bin
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    Ok(CliReport {
        cli: parts[parts.len().saturating_sub(3)..].join("/"),
        relay: under.label(),
        send: send.latency(),
        id: id.latency(),
        argon2id: argon2id.latency(),
        receive_empty: receive_empty.latency(),
        pipe: pipe.latency(),
        pipe_delivery: witness.map(|_| pipe_delivery.latency()),
        pipe_lost,
        follow_interval: args.follow_interval.clone(),
        pipe_gap_ms: args.pipe_gap_ms,
    })
}

/// The human-readable form.
pub fn render(reports: &[CliReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                match &r.follow_interval {
                    Some(i) => format!(
                        "{} via {} (follower --interval {i}, messages {} ms apart)",
                        r.cli, r.relay, r.pipe_gap_ms
                    ),
                    None => format!("{} via {}", r.cli, r.relay),
                },
                r.argon2id.cell(),
                r.id.cell(),
                r.send.cell(),
                r.receive_empty.cell(),
                format!("{} ({} lost)", r.pipe.cell(), r.pipe_lost),
                r.pipe_delivery
                    .as_ref()
                    .map_or_else(|| "not measured".to_owned(), Latency::cell),
            ]
        })
        .collect();
    table(
        &[
            "CLI",
            "Argon2id alone p50 / p99 / max",
            "id (unlock only) p50 / p99 / max",
            "send wall p50 / p99 / max",
            "empty receive wall p50 / p99 / max",
            "send start → follow --json line p50 / p99 / max",
            "relay answered send → follow --json line p50 / p99 / max",
        ],
        &rows,
    )
}
