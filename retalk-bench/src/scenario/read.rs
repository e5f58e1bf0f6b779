//! `read`: `read_messages` latency for a user with little mail while other
//! users have a great deal waiting.
//!
//! A relay without an index on the recipient reads every stored message to
//! answer any read, so its read latency grows with everyone's mail, not
//! the caller's; this scenario shows whether that happens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use retalk_proto::tools::{Mail, ReadMessages};
use serde::Serialize;

use crate::fill;
use crate::http::Conn;
use crate::relay::Kind;
use crate::stats::{table, Latency, Recorder};
use crate::target_relay::{RelayArgs, UnderTest};
use crate::wire::{decode, message, User};

/// How background mail gets into the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum FillMode {
    /// SQLite for relays this run started, the protocol otherwise.
    Auto,
    /// Signed `send_message` requests.
    Protocol,
    /// Rows inserted into the stopped relay's database.
    Sqlite,
}

/// Options of the `read` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Messages waiting for other users at each measurement, ascending,
    /// comma-separated. Mail is added between levels, never removed.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub levels: Vec<usize>,
    /// Messages in the measured user's mailbox at each read.
    #[arg(long, default_value_t = 10)]
    pub mailbox: usize,
    /// Timed reads per level (fewer if --max-seconds runs out first).
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
    /// Untimed read cycles before each level's timed ones (a relay just
    /// restarted after a fill has cold caches).
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Time limit for the reads of one level, seconds (at least 5 reads are
    /// made whatever it says).
    #[arg(long, default_value_t = 60.0)]
    pub max_seconds: f64,
    /// Users the background mail is addressed to.
    #[arg(long, default_value_t = 1_000)]
    pub background_users: usize,
    /// Ciphertext bytes per message.
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
    /// How to put the background mail in.
    #[arg(long, value_enum, default_value_t = FillMode::Auto)]
    pub fill: FillMode,
}

/// One level's result.
#[derive(Debug, Clone, Serialize)]
pub struct ReadLevel {
    /// Messages waiting for other users.
    pub waiting: usize,
    /// Seconds it took to add this level's mail.
    pub fill_seconds: f64,
    /// How the mail was added.
    pub fill: String,
    /// Reads that returned the user's `mailbox` messages.
    pub read: Latency,
    /// Reads of the then empty mailbox.
    pub read_empty: Latency,
}

/// What `read` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReadReport {
    /// The relay measured.
    pub relay: String,
    /// Messages in the measured mailbox per read.
    pub mailbox: usize,
    /// One entry per level.
    pub levels: Vec<ReadLevel>,
}

/// Runs the scenario.
pub async fn run(args: &ReadArgs) -> Result<ReadReport, String> {
    let mut under = args.relay.open().await.map_err(|e| e.to_string())?;
    run_on(&mut under, args).await
}

/// Runs the scenario against an open relay.
pub async fn run_on(under: &mut UnderTest, args: &ReadArgs) -> Result<ReadReport, String> {
    let mode = match (args.fill, &*under) {
        (FillMode::Auto, UnderTest::Managed(_)) => FillMode::Sqlite,
        (FillMode::Auto, UnderTest::External { .. }) => FillMode::Protocol,
        (FillMode::Sqlite, UnderTest::External { .. }) => {
            return Err("--fill sqlite needs a relay started here (--spawn)".into())
        }
        (m, _) => m,
    };
    let me = User::random();
    let my_sender = User::random();
    let background = User::many(args.background_users.max(1));
    let bg_senders = User::many(16);
    let mut all = vec![me, my_sender];
    all.extend(background);
    all.extend(bg_senders);
    let all = Arc::new(all);
    under.relay().publish_all(&all, 32).await?;
    let me = &all[0];
    let my_sender = &all[1];
    let background = &all[2..2 + args.background_users.max(1)];
    let bg_senders = &all[2 + args.background_users.max(1)..];

    let mut report = ReadReport {
        relay: under.label(),
        mailbox: args.mailbox,
        levels: Vec::new(),
    };
    let mut waiting = 0usize;
    let mut levels = args.levels.clone();
    levels.sort_unstable();
    for level in levels {
        let add = level.saturating_sub(waiting);
        eprintln!("read: adding {add} messages for other users ({mode:?})");
        let t = Instant::now();
        match (mode, &mut *under) {
            (FillMode::Sqlite, UnderTest::Managed(m)) => {
                m.stop();
                fill::by_sqlite(&m.db, bg_senders, background, add, args.body_bytes)?;
                m.spawn().await.map_err(|e| e.to_string())?;
            }
            _ => {
                fill::by_protocol(
                    under.relay(),
                    bg_senders,
                    background,
                    add,
                    args.body_bytes,
                    64,
                )
                .await?
            }
        }
        let fill_seconds = t.elapsed().as_secs_f64();
        waiting = level;
        eprintln!("read: {level} waiting; measuring reads");
        let (read, read_empty) = measure(under, me, my_sender, args).await?;
        report.levels.push(ReadLevel {
            waiting: level,
            fill_seconds,
            fill: format!(
                "{mode:?}{}",
                if matches!(under, UnderTest::Managed(m) if m.kind == Kind::Python) {
                    " (reference schema)"
                } else {
                    ""
                }
            )
            .to_lowercase(),
            read,
            read_empty,
        });
    }
    Ok(report)
}

async fn measure(
    under: &UnderTest,
    me: &User,
    sender: &User,
    args: &ReadArgs,
) -> Result<(Latency, Latency), String> {
    let relay = under.relay();
    let mut conn = Conn::new(&relay.target);
    let mut full = Recorder::default();
    let mut empty = Recorder::default();
    let mut deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    let mut i = 0;
    let mut warm = 0;
    while i < args.iterations && (i < 5 || Instant::now() < deadline) {
        let timed = warm >= args.warmup;
        // Untimed: put `mailbox` messages in the measured mailbox.
        for k in 0..args.mailbox {
            relay
                .call_retry(
                    &mut conn,
                    sender,
                    &message(&me.id, args.body_bytes, k as u64),
                )
                .await?;
        }
        // Timed: the read that hands them over, then one of the empty box.
        for (want, rec) in [(args.mailbox, &mut full), (0, &mut empty)] {
            let req = relay.signed(me, &ReadMessages::default());
            conn.connect().await.map_err(|e| e.to_string())?;
            let t = Instant::now();
            let resp = conn.request(&req).await.map_err(|e| e.to_string())?;
            let took = t.elapsed();
            let mail: Vec<Mail> = decode::<ReadMessages>(&resp)?;
            if mail.len() != want {
                return Err(format!(
                    "read_messages returned {} messages, expected {want}",
                    mail.len()
                ));
            }
            if timed {
                rec.record(took);
            }
        }
        if timed {
            i += 1;
        } else {
            warm += 1;
            deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
        }
    }
    Ok((full.latency(), empty.latency()))
}

/// The human-readable form.
pub fn render(reports: &[ReadReport]) -> String {
    let mut rows = Vec::new();
    for r in reports {
        let base = r.levels.first().map(|l| l.read.p50_ms).unwrap_or(0.0);
        for l in &r.levels {
            rows.push(vec![
                r.relay.clone(),
                l.waiting.to_string(),
                format!("{} ({:.0} s)", l.fill, l.fill_seconds),
                l.read.samples.to_string(),
                l.read.cell(),
                l.read_empty.cell(),
                if base > 0.0 {
                    format!("{:.2}x", l.read.p50_ms / base)
                } else {
                    "-".into()
                },
            ]);
        }
    }
    table(
        &[
            "relay",
            "waiting for others",
            "filled by",
            "reads",
            &format!(
                "read of {} msgs p50 / p99 / max",
                reports.first().map(|r| r.mailbox).unwrap_or(0)
            ),
            "empty read p50 / p99 / max",
            "p50 vs first level",
        ],
        &rows,
    )
}
