//! `latency`: end-to-end delivery latency through the relay, protocol
//! level: how long from a sender starting its `send_message` until a
//! receiver that is waiting for mail holds the message.
//!
//! The receiver holds a `read_messages` with `wait` open, as
//! `retalk receive --follow` does on relays that support it (GET /info
//! `max_wait`). On a relay without `wait` the receiver polls instead, the
//! way reference clients do (every 2 s by default), so the two relays'
//! numbers are what their listening clients actually experience.
//!
//! The clock starts when the sender begins its request (before the relay
//! has stored anything), so the figure includes the durable write; the
//! sender's own round trip is reported beside it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use retalk_proto::tools::{Mail, ReadMessages};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::http::Conn;
use crate::stats::{table, Latency, Recorder};
use crate::target_relay::{RelayArgs, UnderTest};
use crate::wire::{decode, message, message_seq, Relay, User};

/// Options of the `latency` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Messages to deliver, one at a time.
    #[arg(long, default_value_t = 500)]
    pub messages: usize,
    /// Seconds each waiting read may be held (capped by the relay's
    /// max_wait).
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Pause between a delivery and the next send, milliseconds, so the
    /// receiver's next read is already waiting at the relay.
    #[arg(long, default_value_t = 20)]
    pub gap_ms: u64,
    /// Ciphertext bytes per message.
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
    /// On relays without `wait`: poll every this many seconds, like
    /// reference clients (0: do not measure such relays).
    #[arg(long, default_value_t = 2.0)]
    pub poll_interval: f64,
    /// Stop after this many seconds even if messages are left.
    #[arg(long, default_value_t = 60.0)]
    pub max_seconds: f64,
}

/// What `latency` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// The relay measured.
    pub relay: String,
    /// How the receiver listened.
    pub mode: String,
    /// Send start to the receiver holding the message.
    pub delivery: Latency,
    /// The sender's own request round trip.
    pub send: Latency,
    /// Messages that did not arrive in time.
    pub lost: u64,
}

/// Runs the scenario.
pub async fn run(args: &LatencyArgs) -> Result<LatencyReport, String> {
    let under = args.relay.open().await.map_err(|e| e.to_string())?;
    run_on(&under, args).await
}

/// Runs the scenario against an open relay.
pub async fn run_on(under: &UnderTest, args: &LatencyArgs) -> Result<LatencyReport, String> {
    let relay = under.relay();
    let d = deliveries(relay, relay, args).await?;
    Ok(LatencyReport {
        relay: under.label(),
        mode: d.mode,
        delivery: d.delivery.latency(),
        send: d.send.latency(),
        lost: d.lost,
    })
}

/// What [`deliveries`] measured.
pub struct Deliveries {
    /// How the receiver listened.
    pub mode: String,
    /// Send start to the receiver holding the message.
    pub delivery: Recorder,
    /// The sender's own round trip.
    pub send: Recorder,
    /// Messages that did not arrive in time.
    pub lost: u64,
}

/// Delivers `args.messages` one at a time from a sender talking to
/// `sending` to a receiver waiting at `receiving` (the same relay, or two
/// replicas of one: both must accept the same audience).
pub async fn deliveries(
    sending: &Relay,
    receiving: &Relay,
    args: &LatencyArgs,
) -> Result<Deliveries, String> {
    let relay = sending.clone();
    let users = Arc::new(User::many(2));
    relay.publish_all(&users, 2).await?;
    let max_wait = receiving.max_wait().await;
    let wait = max_wait.map(|m| args.wait.clamp(1, m.max(1)));
    let mode = match wait {
        Some(w) => format!("wait {w} s"),
        None if args.poll_interval > 0.0 => {
            format!("poll every {} s (relay has no wait)", args.poll_interval)
        }
        None => {
            return Err(
                "the relay does not support read_messages wait (GET /info has no max_wait)".into(),
            )
        }
    };
    eprintln!("latency: {} messages, receiver mode: {mode}", args.messages);

    // Receiver: reports (seq, arrival) for every message it gets.
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let receiver = {
        let (relay, users) = (receiving.clone(), users.clone());
        let poll = Duration::from_secs_f64(args.poll_interval.max(0.001));
        tokio::spawn(async move {
            let me = &users[1];
            let mut conn = Conn::new(&relay.target);
            loop {
                let req = relay.read_request(me, wait);
                let resp = conn.request(&req).await.map_err(|e| e.to_string())?;
                let at = Instant::now();
                let mail: Vec<Mail> = decode::<ReadMessages>(&resp)?;
                for m in mail {
                    if let Some(seq) = message_seq(&m.body) {
                        if tx.send((seq, at)).is_err() {
                            return Ok::<(), String>(());
                        }
                    }
                }
                if wait.is_none() {
                    tokio::time::sleep(poll).await;
                }
            }
        })
    };

    let sender = &users[0];
    let to = users[1].id.clone();
    let mut conn = Conn::new(&relay.target);
    conn.connect().await.map_err(|e| e.to_string())?;
    let mut delivery = Recorder::default();
    let mut send = Recorder::default();
    let mut early: HashMap<u64, Instant> = HashMap::new();
    let mut lost = 0u64;
    let give_up = Duration::from_secs(wait.unwrap_or(0) + 5)
        + Duration::from_secs_f64(args.poll_interval * 2.0);
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    for seq in 0..args.messages as u64 {
        if Instant::now() >= deadline {
            break;
        }
        let gap = if wait.is_some() {
            Duration::from_millis(args.gap_ms)
        } else {
            // Random phase against the receiver's polling.
            Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..args.poll_interval))
        };
        tokio::time::sleep(gap).await;
        let req = relay.signed(sender, &message(&to, args.body_bytes, seq));
        let t0 = Instant::now();
        let resp = conn.request(&req).await.map_err(|e| e.to_string())?;
        send.record(t0.elapsed());
        if resp.status != 200 {
            receiver.abort();
            return Err(format!("send refused: {}", resp.error_text()));
        }
        let arrived = loop {
            if let Some(at) = early.remove(&seq) {
                break Some(at);
            }
            match tokio::time::timeout(give_up, rx.recv()).await {
                Ok(Some((s, at))) if s == seq => break Some(at),
                Ok(Some((s, at))) => {
                    early.insert(s, at);
                }
                Ok(None) => {
                    // The receiver stopped: report why.
                    let why = receiver.await.map_err(|e| e.to_string())?;
                    return Err(format!("receiver stopped: {why:?}"));
                }
                Err(_) => break None,
            }
        };
        match arrived {
            Some(at) => delivery.record(at.saturating_duration_since(t0)),
            None => lost += 1,
        }
    }
    receiver.abort();
    Ok(Deliveries {
        mode,
        delivery,
        send,
        lost,
    })
}

/// The human-readable form.
pub fn render(reports: &[LatencyReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.relay.clone(),
                r.mode.clone(),
                r.delivery.samples.to_string(),
                r.delivery.cell(),
                r.send.cell(),
                r.lost.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "relay",
            "receiver",
            "messages",
            "delivery p50 / p99 / max",
            "send round trip p50 / p99 / max",
            "lost",
        ],
        &rows,
    )
}
