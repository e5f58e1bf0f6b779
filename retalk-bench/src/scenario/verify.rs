//! `verify`: the ceiling. Every request a relay accepts costs at least one
//! Ed25519 signature verification, so verifications per second on this
//! machine bound any relay's request rate here; a relay's throughput is
//! best read as a fraction of this.
//!
//! Measured on 1 thread and on every core, for: a bare `verify_strict`;
//! batch verification (what our relay does with requests that queue up
//! together; it checks a lone request as a batch of one); and the whole per-request work a
//! relay does before touching storage (parse the JSON body, canonicalise
//! and hash the args, check the fingerprint, timestamp and signature).

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer, SigningKey as DalekKey, VerifyingKey};
use retalk_proto::SignedRequest;
use serde::Serialize;

use crate::stats::table;
use crate::wire::{message, now_secs, User};

/// Options of the `verify` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Seconds to run each measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Signatures per batch for batch verification.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Ciphertext bytes of the send_message used for the full request check.
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
}

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRow {
    /// What was measured.
    pub what: String,
    /// Threads.
    pub threads: usize,
    /// Operations per second of wall time, all threads together (depends
    /// on what else the machine is doing).
    pub per_second: f64,
    /// CPU microseconds per operation, from the threads' own CPU clocks.
    pub micros_each: f64,
    /// Operations per second one core would do if it did nothing else
    /// (`1 / micros_each`): the load-independent ceiling per core.
    pub per_core_second: f64,
}

/// What `verify` measured.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The measurements.
    pub rows: Vec<VerifyRow>,
    /// CPUs available to this process.
    pub cpus: usize,
}

/// CPU time this thread has used, seconds.
fn thread_cpu() -> f64 {
    // SAFETY: clock_gettime writes into the zeroed timespec we pass.
    unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t);
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    }
}

/// Runs `op` on `threads` threads for `secs` of wall time (`op` returns
/// how many operations it did per call). Returns operations per wall
/// second (all threads) and CPU seconds per operation. The second is what
/// a busy machine cannot distort much: it counts only the time the threads
/// actually ran.
fn rate<F>(threads: usize, secs: f64, op: F) -> (f64, f64)
where
    F: Fn(usize) -> u64 + Sync,
{
    let op = &op;
    let (total, cpu): (u64, f64) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let end = Instant::now() + Duration::from_secs_f64(secs);
                    let cpu0 = thread_cpu();
                    let mut n = 0u64;
                    let mut i = t * 7919;
                    while Instant::now() < end {
                        for _ in 0..16 {
                            n += op(i);
                            i += 1;
                        }
                    }
                    (n, thread_cpu() - cpu0)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("thread"))
            .fold((0, 0.0), |(n, c), (n2, c2)| (n + n2, c + c2))
    });
    (total as f64 / secs, cpu / total.max(1) as f64)
}

/// Runs the scenario.
pub fn run(args: &VerifyArgs) -> Result<VerifyReport, String> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // Signed texts shaped like real ones (tool|audience|id|ts|nonce|hash).
    let keys: Vec<DalekKey> = (0..256)
        .map(|_| DalekKey::from_bytes(&rand::random()))
        .collect();
    let samples: Vec<(VerifyingKey, Vec<u8>, Signature)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let text = format!(
                "send_message|http://127.0.0.1:8766|{:032x}|{}|{:022}|{:064x}",
                i,
                now_secs(),
                i,
                i
            )
            .into_bytes();
            let sig = k.sign(&text);
            (k.verifying_key(), text, sig)
        })
        .collect();
    let zebra: Vec<(
        ed25519_zebra::VerificationKey,
        &[u8],
        ed25519_zebra::Signature,
    )> = samples
        .iter()
        .map(|(k, m, s)| {
            (
                ed25519_zebra::VerificationKey::try_from(k.to_bytes()).expect("valid key"),
                m.as_slice(),
                ed25519_zebra::Signature::from_bytes(&s.to_bytes()),
            )
        })
        .collect();
    // Real request bodies, parsed and checked as a relay does.
    let relay = crate::wire::Relay::new("http://127.0.0.1:8766", None)?;
    let users = User::many(16);
    let bodies: Vec<Vec<u8>> = (0..256)
        .map(|i| {
            let raw = relay.signed(
                &users[i % 16],
                &message(&users[(i + 1) % 16].id, args.body_bytes, i as u64),
            );
            // Strip the HTTP head: the relay parses only the body.
            let at = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
            raw[at..].to_vec()
        })
        .collect();
    let audiences = vec![relay.audience.clone()];
    let now = now_secs();
    let check = |i: usize| {
        let req = SignedRequest::parse(&bodies[i % bodies.len()]).expect("valid request");
        req.auth
            .verify(req.call.name(), &audiences, &req.args_sha256, now)
            .expect("valid signature");
        1
    };
    check(0);

    let mut rows = Vec::new();
    let mut threads_list = vec![1];
    if cpus > 1 {
        threads_list.push(cpus);
    }
    let secs = args.seconds;
    let batch = args.batch.max(1);
    for &threads in &threads_list {
        let mut row = |what: String, (per_second, cpu_each): (f64, f64)| {
            rows.push(VerifyRow {
                what,
                threads,
                per_second,
                micros_each: cpu_each * 1e6,
                per_core_second: 1.0 / cpu_each.max(1e-12),
            })
        };
        row(
            "Ed25519 verify_strict (one signature alone)".into(),
            rate(threads, secs, |i| {
                let (k, m, s) = &samples[i % samples.len()];
                k.verify_strict(m, s).expect("valid");
                1
            }),
        );
        row(
            "ed25519-zebra single check (the relay's check of a failed batch's culprits)".into(),
            rate(threads, secs, |i| {
                let (k, m, s) = &zebra[i % zebra.len()];
                k.verify(s, m).expect("valid");
                1
            }),
        );
        row(
            format!("Ed25519 batch verify ({batch} per batch)"),
            rate(threads, secs, |i| {
                let start = (i * batch) % samples.len();
                let chunk: Vec<&(VerifyingKey, Vec<u8>, Signature)> = (0..batch)
                    .map(|j| &samples[(start + j) % samples.len()])
                    .collect();
                let msgs: Vec<&[u8]> = chunk.iter().map(|c| c.1.as_slice()).collect();
                let sigs: Vec<Signature> = chunk.iter().map(|c| c.2).collect();
                let vks: Vec<VerifyingKey> = chunk.iter().map(|c| c.0).collect();
                ed25519_dalek::verify_batch(&msgs, &sigs, &vks).expect("valid batch");
                batch as u64
            }),
        );
        row(
            format!(
                "full request check: parse send_message ({} B body) + auth verify",
                args.body_bytes
            ),
            rate(threads, secs, check),
        );
        if threads > 1 {
            continue;
        }
        // Where a single check's time goes (one thread only).
        row(
            "  of which: Ed25519 verify (non-strict)".into(),
            rate(threads, secs, |i| {
                let (k, m, s) = &samples[i % samples.len()];
                ed25519_dalek::Verifier::verify(k, m, s).expect("valid");
                1
            }),
        );
        row(
            "  of which: public key decompression (VerifyingKey::from_bytes)".into(),
            rate(threads, secs, |i| {
                let (k, _, _) = &samples[i % samples.len()];
                VerifyingKey::from_bytes(k.as_bytes()).expect("valid key");
                1
            }),
        );
        row(
            "  of which: parse request + canonical args sha256 (no signature)".into(),
            rate(threads, secs, |i| {
                let req = SignedRequest::parse(&bodies[i % bodies.len()]).expect("valid request");
                std::hint::black_box(req);
                1
            }),
        );
        row(
            "    the same without the fast path (through a JSON tree)".into(),
            rate(threads, secs, |i| {
                let req =
                    SignedRequest::parse_general(&bodies[i % bodies.len()]).expect("valid request");
                std::hint::black_box(req);
                1
            }),
        );
    }
    Ok(VerifyReport { rows, cpus })
}

/// The human-readable form.
pub fn render(r: &VerifyReport) -> String {
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|v| {
            vec![
                v.what.clone(),
                v.threads.to_string(),
                format!("{:.0}", v.per_second),
                format!("{:.1} µs", v.micros_each),
                format!("{:.0}", v.per_core_second),
            ]
        })
        .collect();
    table(
        &[
            "operation",
            "threads",
            "per second (wall)",
            "CPU time each",
            "per CPU-second",
        ],
        &rows,
    )
}
