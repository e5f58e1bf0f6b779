//! The single writer: one thread owns the database's write connection and
//! runs every verified request, in groups.
//!
//! Every signed request writes (at least its nonce), and SQLite has one
//! writer at a time anyway, so instead of many connections contending for
//! the lock, requests queue here. The thread takes whatever is queued (up to
//! [`MAX_BATCH`]), runs it all in ONE transaction, commits once (one WAL
//! append and, with `synchronous=FULL`, one fsync for the whole group), and
//! only then answers each request. So:
//!
//! * HTTP 200 means the change is on disk;
//! * a request's nonce is stored in the same commit as its effect, so replay
//!   protection survives a restart and a refused replay changes nothing;
//! * `claim_key` and `read_messages` are serialized: no one-time key is
//!   handed out twice, and a message stored concurrently with a read is
//!   either in that read's answer (and deleted) or left for the next one;
//! * throughput grows with load, since more queued requests share a commit.
//!
//! A request whose client has gone away before its turn is skipped, so a
//! disconnected reader never has mail deleted on its behalf.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use retalk::proto::tools::{
    ClaimedKey, KeyCounts, Mail, Nack, PublicKeys, PublishKeys, Published, SendMessage, SendOutcome,
};
use retalk::proto::{Nonce, UserId, WireError};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::store::{self, OpError};
use crate::waiters::Waiters;

/// Most requests that share one transaction. Large enough to amortize the
/// commit at high load, small enough to keep each group's latency short.
pub const MAX_BATCH: usize = 1024;

/// How often old nonces and expired refusals are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// A tool operation, already authenticated.
#[derive(Debug)]
pub enum Op {
    /// `publish_keys`
    Publish(PublishKeys),
    /// `count_keys`
    CountKeys,
    /// `get_keys`
    GetKeys(UserId),
    /// `claim_key`
    ClaimKey(UserId),
    /// `send_message`, with the sha256 hex of its body (for the refusal gate)
    Send(SendMessage, String),
    /// `read_messages`
    Read {
        /// Only this sender's mail.
        peer: Option<UserId>,
        /// Do not delete.
        peek: bool,
        /// Seconds to wait when nothing is there (handled by the caller).
        wait: Option<u64>,
    },
    /// `nack` (signature already checked)
    Nack(Nack),
}

/// What a waiting read still has to do once its first look found nothing.
#[derive(Debug, Clone)]
pub struct WaitPlan {
    /// Whose mailbox.
    pub caller: UserId,
    /// Only this sender's mail.
    pub peer: Option<UserId>,
    /// Do not delete.
    pub peek: bool,
    /// Seconds to wait.
    pub secs: u64,
}

/// A tool's successful result.
#[derive(Debug)]
pub enum Outcome {
    /// `publish_keys`
    Published(Published),
    /// `count_keys`
    Counts(KeyCounts),
    /// `get_keys`
    Keys(PublicKeys),
    /// `claim_key`
    Claimed(ClaimedKey),
    /// `send_message`
    Sent(SendOutcome),
    /// `read_messages`; `wait` is set when the mailbox was empty and the
    /// caller asked to wait.
    Mail {
        /// The messages handed over.
        mail: Vec<Mail>,
        /// Set when nothing was there and the caller asked to wait.
        wait: Option<WaitPlan>,
    },
    /// `nack`
    Nacked,
}

/// Where a job's answer goes.
pub type ReplyTx = oneshot::Sender<Result<Outcome, WireError>>;

/// One request for the writer.
#[derive(Debug)]
pub struct Job {
    /// The authenticated caller.
    pub caller: UserId,
    /// The request's nonce; `None` for the relay's own re-checks of a
    /// waiting read (they are not requests).
    pub nonce: Option<Nonce>,
    /// What to do.
    pub op: Op,
    /// Where the answer goes.
    pub reply: ReplyTx,
}

enum Msg {
    Job(Job),
    Stop,
}

/// The limits and clock the writer applies.
#[derive(Debug, Clone)]
pub struct Limits {
    /// See [`crate::Config::max_otks_per_user`].
    pub max_otks: u64,
    /// See [`crate::Config::max_mailbox`].
    pub max_mailbox: u64,
    /// See [`crate::Config::max_refused`].
    pub max_refused: u64,
    /// See [`crate::Config::refused_ttl`], in seconds (0 = forever).
    pub refused_ttl_secs: f64,
    /// See [`crate::Config::clock_offset_secs`].
    pub clock_offset_secs: i64,
}

/// The message that goes with every answer when the database failed.
pub fn unavailable() -> WireError {
    WireError::Unavailable(
        "the relay's database is unavailable (nothing was changed); retry later".into(),
    )
}

/// Sends jobs to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
}

impl WriterHandle {
    /// Queues a job. If the writer has stopped, the job is answered with
    /// "unavailable" at once.
    pub fn submit(&self, job: Job) {
        if let Err(mpsc::SendError(Msg::Job(job))) = self.tx.send(Msg::Job(job)) {
            let _ = job.reply.send(Err(unavailable()));
        }
    }

    /// Runs `op` for `caller` and waits for the committed result.
    pub async fn call(
        &self,
        caller: UserId,
        nonce: Option<Nonce>,
        op: Op,
    ) -> Result<Outcome, WireError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job {
            caller,
            nonce,
            op,
            reply,
        });
        rx.await.unwrap_or_else(|_| Err(unavailable()))
    }

    /// Asks the writer to finish what is queued and stop.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// Starts the writer thread on an open connection.
pub fn spawn(
    conn: Connection,
    limits: Limits,
    waiters: Arc<Waiters>,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("retalk-writer".into())
        .spawn(move || {
            Writer {
                conn,
                limits,
                waiters,
            }
            .run(rx)
        })?;
    Ok((WriterHandle { tx }, thread))
}

struct Writer {
    conn: Connection,
    limits: Limits,
    waiters: Arc<Waiters>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        self.prune();
        let mut last_prune = Instant::now();
        loop {
            if last_prune.elapsed() >= PRUNE_EVERY {
                self.prune();
                last_prune = Instant::now();
            }
            let first = match rx.recv_timeout(PRUNE_EVERY) {
                Ok(Msg::Job(job)) => job,
                Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
            };
            let mut batch = vec![first];
            let mut stop = false;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Msg::Job(job)) => batch.push(job),
                    Ok(Msg::Stop) => {
                        stop = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            // A bug must not take the relay down: a panicking group is
            // rolled back (the transaction's drop) and its requests are
            // answered "unavailable" when their reply channels drop.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| self.run_batch(batch)));
            if stop {
                return;
            }
        }
    }

    fn now(&self) -> f64 {
        crate::unix_now(self.limits.clock_offset_secs)
    }

    fn prune(&mut self) {
        let now = self.now();
        if let Err(e) = store::prune(&self.conn, now, self.limits.refused_ttl_secs) {
            tracing::warn!("pruning old nonces failed: {e}");
        }
    }

    fn run_batch(&mut self, mut batch: Vec<Job>) {
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            return;
        }
        let now = self.now();
        let mut answers: Vec<(ReplyTx, Result<Outcome, WireError>)> =
            Vec::with_capacity(batch.len());
        let mut delivered: Vec<UserId> = Vec::new();
        let committed = (|| -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for job in batch.drain(..) {
                match execute(&tx, &self.limits, &job, now) {
                    Ok(outcome) => {
                        if let Outcome::Sent(SendOutcome::Stored { .. }) = outcome {
                            if let Op::Send(msg, _) = &job.op {
                                delivered.push(msg.to.clone());
                            }
                        }
                        answers.push((job.reply, Ok(outcome)));
                    }
                    Err(OpError::Refused(e)) => answers.push((job.reply, Err(e))),
                    Err(OpError::Db(e)) => {
                        answers.push((job.reply, Err(unavailable())));
                        return Err(e);
                    }
                }
            }
            tx.commit()
        })();
        // Jobs never reached (after a failure) are answered by their
        // dropped reply channel; the rest learn the group's fate here.
        drop(batch);
        match committed {
            Ok(()) => {
                for mailbox in &delivered {
                    self.waiters.notify(mailbox);
                }
                for (reply, answer) in answers {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(
                    "database write failed, group of {} rolled back: {e}",
                    answers.len()
                );
                for (reply, _) in answers {
                    let _ = reply.send(Err(unavailable()));
                }
            }
        }
    }
}

fn execute(conn: &Connection, limits: &Limits, job: &Job, now: f64) -> Result<Outcome, OpError> {
    if let Some(nonce) = &job.nonce {
        store::insert_nonce(conn, nonce, now)?;
    }
    let caller = &job.caller;
    Ok(match &job.op {
        Op::Publish(req) => {
            Outcome::Published(store::publish_keys(conn, caller, req, limits.max_otks)?)
        }
        Op::CountKeys => Outcome::Counts(store::count_keys(conn, caller)?),
        Op::GetKeys(peer) => Outcome::Keys(store::get_keys(conn, peer)?),
        Op::ClaimKey(peer) => Outcome::Claimed(store::claim_key(conn, peer)?),
        Op::Send(msg, hash) => Outcome::Sent(store::send_message(
            conn,
            caller,
            msg,
            hash,
            now,
            limits.max_mailbox,
            limits.refused_ttl_secs,
        )?),
        Op::Read { peer, peek, wait } => {
            let mail = store::read_messages(conn, caller, peer.as_ref(), *peek)?;
            let wait = match wait {
                Some(secs) if mail.is_empty() => Some(WaitPlan {
                    caller: caller.clone(),
                    peer: peer.clone(),
                    peek: *peek,
                    secs: *secs,
                }),
                _ => None,
            };
            Outcome::Mail { mail, wait }
        }
        Op::Nack(req) => {
            store::nack(conn, caller, req, now, limits.max_refused)?;
            Outcome::Nacked
        }
    })
}
