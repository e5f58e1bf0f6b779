//! The single writer: one thread owns the database's write connection and
//! runs every verified request, in groups.
//!
//! Every signed request writes (at least its nonce), and SQLite has one
//! writer at a time anyway, so instead of many connections contending for
//! the lock, requests queue here. The thread takes whatever is queued (up to
//! [`MAX_BATCH`]), runs it all in ONE transaction, commits once (one WAL
//! append and, with [`Durability::Full`](crate::Durability::Full), one fsync
//! for the whole group), and only then answers each request. So:
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
//!
//! # Pipelined durability
//!
//! An fsync is wall time the writer would otherwise spend idle: with one
//! thread doing both, the next group cannot start until the last one is on
//! disk, and at a few dozen requests per group the sync is most of each
//! cycle. So with [`Durability::Full`](crate::Durability::Full) SQLite
//! commits without syncing (`synchronous=NORMAL`) and a second thread, the
//! syncer, fsyncs the WAL after each commit and only then answers that
//! group and wakes its recipients' waiting readers. Meanwhile the writer
//! already runs the next group; groups committed during one sync share the
//! next. Nothing is answered (and no waiting reader learns of mail) before
//! its data is on disk, and since the WAL is one append-only log synced in
//! order, a group is never durable without every group before it. A later
//! group may read an earlier one's not-yet-synced rows, but its own answer
//! waits for a sync that covers them.

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use retalk_proto::tools::{
    ClaimedKey, KeyCounts, Mail, Nack, PublicKeys, PublishKeys, Published, SendMessage, SendOutcome,
};
use retalk_proto::{AuthError, Nonce, UserId, WireError};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::mailboxes::Mailboxes;
use crate::nonces::{GroupNonces, NonceMemory};
use crate::storage::sqlite::wal_buffer;
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

impl Op {
    /// The tool's wire name (a metrics label).
    pub fn tool(&self) -> &'static str {
        match self {
            Op::Publish(_) => "publish_keys",
            Op::CountKeys => "count_keys",
            Op::GetKeys(_) => "get_keys",
            Op::ClaimKey(_) => "claim_key",
            Op::Send(..) => "send_message",
            Op::Read { .. } => "read_messages",
            Op::Nack(_) => "nack",
        }
    }
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
    /// See [`crate::Config::max_mailbox`] and the two after it.
    pub mailbox: store::MailboxCaps,
    /// See [`crate::Config::message_ttl`], in seconds (0 = keep).
    pub message_ttl_secs: f64,
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

    /// Asks the writer to finish what is queued and stop.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// Starts the writer thread on an open connection (see [`crate::store::open`]).
///
/// With `wal`, the database's write-ahead log (see
/// [`crate::store::wal_file`]), a syncer thread fsyncs it after every group
/// commit and answers the group only then; without, a group is answered as
/// soon as it is committed. The returned handle joins both threads.
pub fn spawn(
    conn: Connection,
    nonces: NonceMemory,
    limits: Limits,
    waiters: Arc<Waiters>,
    wal: Option<File>,
    health: Arc<crate::metrics::Health>,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let syncer = match wal {
        Some(wal) => {
            let (sync_tx, sync_rx) = mpsc::channel();
            let waiters = Arc::clone(&waiters);
            let health = Arc::clone(&health);
            let thread = std::thread::Builder::new()
                .name("retalk-syncer".into())
                .spawn(move || run_syncer(&wal, &waiters, &health, sync_rx))?;
            Some((sync_tx, thread))
        }
        None => None,
    };
    let thread = std::thread::Builder::new()
        .name("retalk-writer".into())
        .spawn(move || {
            let (sync_tx, sync_thread) = match syncer {
                Some((tx, thread)) => (Some(tx), Some(thread)),
                None => (None, None),
            };
            Writer {
                conn,
                nonces,
                mailboxes: Mailboxes::default(),
                limits,
                waiters,
                syncer: sync_tx,
                health,
            }
            .run(rx);
            // The writer (and with it the syncer's sender) is gone: the
            // syncer answers what is left and stops.
            if let Some(thread) = sync_thread {
                let _ = thread.join();
            }
        })?;
    Ok((WriterHandle { tx }, thread))
}

/// A committed group waiting to be made durable and answered.
struct Committed {
    answers: Vec<(ReplyTx, Result<Outcome, WireError>)>,
    /// Mailboxes that received mail in this group.
    delivered: Vec<UserId>,
}

impl Committed {
    /// Wakes the recipients' waiting readers and answers every request.
    fn release(self, waiters: &Waiters) {
        for mailbox in &self.delivered {
            waiters.notify(mailbox);
        }
        for (reply, answer) in self.answers {
            let _ = reply.send(answer);
        }
    }

    /// Answers every request "unavailable": the group's durability is
    /// unknown.
    fn fail(self) {
        for (reply, _) in self.answers {
            let _ = reply.send(Err(unavailable()));
        }
    }
}

/// The syncer: takes every group committed since its last sync, fsyncs the
/// WAL once for all of them, then releases them in commit order.
fn run_syncer(
    wal: &File,
    waiters: &Waiters,
    health: &crate::metrics::Health,
    rx: mpsc::Receiver<Committed>,
) {
    while let Ok(first) = rx.recv() {
        let mut groups = vec![first];
        groups.extend(rx.try_iter());
        let started = Instant::now();
        let synced = wal.sync_data();
        metrics::histogram!("retalk_fsync_seconds").record(started.elapsed().as_secs_f64());
        health.storage(synced.is_ok());
        match synced {
            Ok(()) => groups.into_iter().for_each(|g| g.release(waiters)),
            Err(e) => {
                metrics::counter!("retalk_storage_errors_total", "stage" => "sync").increment(1);
                // The commits are in SQLite but perhaps not on disk: their
                // senders are told to retry (a retried message may then be
                // delivered twice, which clients recognise by its hash).
                let n: usize = groups.iter().map(|g| g.answers.len()).sum();
                tracing::error!(
                    "syncing the database's log failed, {n} requests answered unavailable: {e}"
                );
                groups.into_iter().for_each(Committed::fail);
            }
        }
    }
}

struct Writer {
    conn: Connection,
    /// Nonces seen recently (a cache of the database's record).
    nonces: NonceMemory,
    /// Which messages wait in each mailbox, and from whom (the database's
    /// index of its mail, held here; see [`crate::mailboxes`]).
    mailboxes: Mailboxes,
    limits: Limits,
    waiters: Arc<Waiters>,
    /// The syncer's queue, with `Durability::Full`.
    syncer: Option<mpsc::Sender<Committed>>,
    /// Set by every commit's outcome (for `/readyz`).
    health: Arc<crate::metrics::Health>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        self.index_mail();
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
            if std::panic::catch_unwind(AssertUnwindSafe(|| self.run_batch(batch))).is_err() {
                // Rolled back: what the group indexed is not in the file.
                self.mailboxes.forget();
            }
            if stop {
                return;
            }
        }
    }

    /// Builds the mailbox index before the first request rather than in
    /// its group (a large file takes seconds to scan). On failure the first
    /// group's transaction tries again.
    fn index_mail(&mut self) {
        let started = Instant::now();
        let built = (|| -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            self.mailboxes.check(&tx)?;
            tx.commit()
        })();
        match built {
            Ok(()) => {
                self.health.mail(self.mailboxes.all());
                tracing::info!(
                    "indexed {} waiting message(s) in {} ms",
                    self.mailboxes.all().messages,
                    started.elapsed().as_millis()
                )
            }
            Err(e) => {
                self.mailboxes.forget();
                tracing::warn!(
                    "indexing the waiting mail failed (tried again at the next request): {e}"
                );
            }
        }
    }

    fn now(&self) -> f64 {
        crate::unix_now(self.limits.clock_offset_secs)
    }

    fn prune(&mut self) {
        let now = self.now();
        self.nonces.forget_before(now - store::NONCE_MEMORY_SECS);
        if let Err(e) = store::prune(&self.conn, now, self.limits.refused_ttl_secs) {
            tracing::warn!("pruning old nonces failed: {e}");
        }
        let expired = store::expire_messages(
            &self.conn,
            &mut self.mailboxes,
            now,
            self.limits.message_ttl_secs,
        );
        if expired.is_ok() {
            // Also when nothing expired: the pass's transaction rebuilds the
            // index if another program wrote the file meanwhile.
            self.health.mail(self.mailboxes.all());
        }
        match expired {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("retalk_expired_messages_total").increment(n as u64);
                tracing::info!("deleted {n} undelivered message(s) past --message-ttl");
            }
            Err(e) => tracing::warn!("deleting expired messages failed: {e}"),
        }
    }

    /// Whether the last commit's log bytes are all in the file. The WAL
    /// buffer is empty after every commit (see `wal_buffer`); were it not,
    /// its bytes must reach the file before the syncer's fsync answers the
    /// group, so they are written here, and a failure to write them fails
    /// the group as a failed sync does.
    fn log_written(&self) -> bool {
        match wal_buffer::flush(&self.conn) {
            Ok(0) => true,
            Ok(late) => {
                debug_assert_eq!(late, 0, "a commit left bytes in the WAL buffer");
                tracing::warn!("{late} bytes of a commit were still buffered; written now");
                true
            }
            Err(e) => {
                metrics::counter!("retalk_storage_errors_total", "stage" => "sync").increment(1);
                tracing::error!(
                    "writing a commit's buffered log failed, group answered unavailable: {e}"
                );
                false
            }
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
        let mut nonces = GroupNonces::default();
        let memory = &self.nonces;
        let mailboxes = &mut self.mailboxes;
        let committed = (|| -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Holding the write lock: whatever another connection wrote
            // before it is indexed now, and nothing can write after it.
            mailboxes.check(&tx)?;
            metrics::histogram!("retalk_group_commit_size").record(batch.len() as f64);
            // Taken at the group's first send, handed back before the commit.
            let mut sends = None;
            for job in batch.drain(..) {
                let result = execute(
                    &tx,
                    &mut sends,
                    &self.limits,
                    memory,
                    &mut nonces,
                    mailboxes,
                    &job,
                    now,
                );
                let status = match &result {
                    Ok(_) => 200,
                    Err(OpError::Refused(e)) => e.status(),
                    Err(OpError::Db(_)) => 503,
                };
                metrics::counter!(
                    "retalk_requests_total",
                    "tool" => job.op.tool(),
                    "status" => crate::metrics::status_label(status)
                )
                .increment(1);
                if matches!(
                    &result,
                    Err(OpError::Refused(WireError::Auth(AuthError::Replay)))
                ) {
                    metrics::counter!("retalk_verification_failures_total", "reason" => "replay")
                        .increment(1);
                }
                match result {
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
            drop(sends);
            nonces.record(&tx, now)?;
            tx.commit()
        })();
        // Jobs never reached (after a failure) are answered by their
        // dropped reply channel; the rest learn the group's fate here.
        drop(batch);
        let group = Committed { answers, delivered };
        let in_file = committed.is_ok() && self.log_written();
        self.health.storage(in_file);
        if committed.is_err() {
            metrics::counter!("retalk_storage_errors_total", "stage" => "commit").increment(1);
        }
        if committed.is_ok() {
            // Committed, so in SQLite's record even if its log bytes could
            // not be written: a replay must still be refused.
            nonces.commit(&mut self.nonces, now);
            self.health.mail(self.mailboxes.all());
        } else {
            // Rolled back: what the group indexed is not in the file.
            self.mailboxes.forget();
        }
        match committed {
            // Durability unknown, as after a failed sync.
            Ok(()) if !in_file => group.fail(),
            Ok(()) => match &self.syncer {
                Some(syncer) => {
                    if let Err(mpsc::SendError(group)) = syncer.send(group) {
                        // The syncer died (it does not panic on its own):
                        // durability is unknown.
                        group.fail();
                    }
                }
                None => group.release(&self.waiters),
            },
            Err(e) => {
                tracing::error!(
                    "database write failed, group of {} rolled back: {e}",
                    group.answers.len()
                );
                group.fail();
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn execute<'c>(
    conn: &'c Connection,
    sends: &mut Option<store::SendStatements<'c>>,
    limits: &Limits,
    memory: &NonceMemory,
    nonces: &mut GroupNonces,
    mailboxes: &mut Mailboxes,
    job: &Job,
    now: f64,
) -> Result<Outcome, OpError> {
    if let Some(nonce) = &job.nonce {
        if !nonces.admit(memory, nonce) {
            return Err(WireError::Auth(AuthError::Replay).into());
        }
    }
    let caller = &job.caller;
    Ok(match &job.op {
        Op::Publish(req) => {
            Outcome::Published(store::publish_keys(conn, caller, req, limits.max_otks)?)
        }
        Op::CountKeys => Outcome::Counts(store::count_keys(conn, caller)?),
        Op::GetKeys(peer) => Outcome::Keys(store::get_keys(conn, peer)?),
        Op::ClaimKey(peer) => Outcome::Claimed(store::claim_key(conn, peer)?),
        Op::Send(msg, hash) => {
            let statements = match sends {
                Some(held) => held,
                None => sends.insert(store::SendStatements::prepare(conn)?),
            };
            Outcome::Sent(statements.send(
                caller,
                msg,
                hash,
                now,
                &limits.mailbox,
                limits.refused_ttl_secs,
                mailboxes,
            )?)
        }
        Op::Read { peer, peek, wait } => {
            let mail = store::read_messages(conn, mailboxes, caller, peer.as_ref(), *peek)?;
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
            store::nack(
                conn,
                caller,
                req,
                now,
                limits.max_refused,
                limits.refused_ttl_secs,
            )?;
            Outcome::Nacked
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_otks: 10,
            mailbox: store::MailboxCaps {
                messages: 10,
                per_sender: 0,
                bytes: 0,
            },
            message_ttl_secs: 0.0,
            max_refused: 10,
            refused_ttl_secs: 0.0,
            clock_offset_secs: 0,
        }
    }

    /// A peeking read: it commits (its nonce) like any request.
    async fn peek(writer: &WriterHandle) -> Result<Outcome, WireError> {
        let caller = UserId::parse(&"ab".repeat(16), "user").unwrap();
        let op = Op::Read {
            peer: None,
            peek: true,
            wait: None,
        };
        crate::storage::call_with(|job| writer.submit(job), caller, Some(Nonce::random()), op).await
    }

    /// A writer on a fresh database, syncing the handle `wal` picks.
    fn start(
        dir: &std::path::Path,
        wal: impl FnOnce(&Connection) -> Option<File>,
    ) -> (WriterHandle, JoinHandle<()>) {
        let conn = crate::store::open(&dir.join("s.db")).unwrap();
        let wal = wal(&conn);
        spawn(
            conn,
            NonceMemory::default(),
            limits(),
            Arc::default(),
            wal,
            Default::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_synced_group_is_answered_ok() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = start(dir.path(), |c| Some(crate::store::wal_file(c).unwrap()));
        assert!(matches!(peek(&writer).await, Ok(Outcome::Mail { .. })));
        writer.stop();
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn a_failed_sync_answers_unavailable_not_ok() {
        let dir = tempfile::tempdir().unwrap();
        // fsync of a character device fails (EINVAL): a syncer that is
        // consulted must turn the committed group into "unavailable".
        let wal = File::open("/dev/null").unwrap();
        assert!(wal.sync_data().is_err(), "this test needs a failing fsync");
        let (writer, thread) = start(dir.path(), |_| Some(wal));
        for _ in 0..3 {
            match peek(&writer).await {
                Err(WireError::Unavailable(_)) => {}
                other => panic!("answered before a durable sync: {other:?}"),
            }
        }
        writer.stop();
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn without_a_syncer_a_group_is_answered_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = start(dir.path(), |_| None);
        assert!(matches!(peek(&writer).await, Ok(Outcome::Mail { .. })));
        writer.stop();
        thread.join().unwrap();
    }
}
