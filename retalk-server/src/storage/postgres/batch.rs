//! Group commit on PostgreSQL: whatever requests are queued when a
//! connection is free run together in ONE transaction, as the SQLite
//! writer's groups do, with the statements of each step sent down the
//! connection at once (pipelined) and one row-set statement per step for
//! all the group's sends.
//!
//! A group of sends costs five round trips and one commit (one WAL flush)
//! whatever its size:
//!
//! 1. `BEGIN`;
//! 2. the group's nonces (one `INSERT ... ON CONFLICT DO NOTHING RETURNING`),
//!    which recipients exist, and which bodies they refused;
//! 3. the mailbox rows of every recipient and deleting reader (created
//!    where missing, then locked with `SELECT ... FOR UPDATE` in sorted
//!    order, so groups on any number of replicas never deadlock on them,
//!    and no row is rewritten just to lock it), with the totals the caps
//!    are checked against, the per-sender counts, and the user rows of the
//!    group's publishes (sorted too);
//! 4. the messages (one `INSERT ... SELECT FROM unnest`), the mailbox
//!    totals and the `pg_notify` wake-ups;
//! 5. `COMMIT`.
//!
//! The caps are applied in request order against the locked totals plus
//! what the group itself stores before, so a group answers exactly as the
//! same requests run one by one would. Requests other than sends run one
//! after the other in the same transaction, after the group's sends (their
//! order among concurrent requests is free), on the rows step 3 locked.
//!
//! Every answer waits for the `COMMIT`. A group whose transaction fails
//! before it (a statement error, a deadlock with something outside the
//! groups) was rolled back whole, so each of its requests runs again alone;
//! a `COMMIT` whose outcome is unknown (the connection dropped) answers
//! them all "unavailable", as a single request's would, since running them
//! again could apply them twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::{try_join3, try_join4};
use futures_util::StreamExt;
use retalk_proto::tools::SendOutcome;
use retalk_proto::{AuthError, WireError};
use tokio::sync::{mpsc, Semaphore};

use super::{now, Fail, Inner, CHANNEL};
use crate::waiters::Shutdown;
use crate::writer::{unavailable, Job, Op, Outcome};

/// Most requests in one group.
pub const MAX_GROUP: usize = 512;
/// Groups in flight at once per replica. One more than one lets a group
/// gather its rows while the one before waits for its WAL flush; more
/// only queue on the same mailbox locks.
pub const GROUPS_IN_FLIGHT: usize = 2;
/// Requests of a rolled-back group that run alone at once (each its own
/// transaction and connection).
const ALONE_AT_ONCE: usize = 4;
/// Tries of a request that runs alone and hits a deadlock or a
/// serialization failure.
const TRIES: usize = 3;

/// Takes whatever is queued, as soon as a group may start, and runs it as
/// one group; until `stop`.
pub(super) async fn dispatch(
    inner: Arc<Inner>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    stop: Arc<Shutdown>,
) {
    let slots = Arc::new(Semaphore::new(GROUPS_IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let first = tokio::select! {
            job = queue.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = stop.wait() => return,
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            inner.run_group(jobs).await;
            drop(slot);
        });
    }
}

/// How a group's transaction failed.
enum GroupFail {
    /// Rolled back: nothing of the group was committed.
    RolledBack(Fail),
    /// The `COMMIT` may or may not have happened.
    Unknown(Fail),
}

impl From<tokio_postgres::Error> for GroupFail {
    fn from(e: tokio_postgres::Error) -> Self {
        GroupFail::RolledBack(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for GroupFail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        GroupFail::RolledBack(e.into())
    }
}

/// Whether a failure is one a second try may not meet (a deadlock or a
/// serialization failure, which PostgreSQL resolves by aborting one side).
fn transient(fail: &Fail) -> bool {
    match fail {
        Fail::Db(super::PgError::Db(e)) => e.code().is_some_and(|c| {
            *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
        }),
        _ => false,
    }
}

type Answer = Result<Outcome, WireError>;

/// A send that passed the gates of step 2.
struct Candidate<'a> {
    job: usize,
    sender: &'a str,
    to: &'a str,
    mtype: i32,
    body: &'a str,
}

impl Inner {
    /// Runs a group and answers every request in it.
    async fn run_group(self: &Arc<Self>, jobs: Vec<Job>) {
        // A request whose client has gone is skipped (a disconnected reader
        // never has mail deleted on its behalf).
        let (jobs, gone): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| !j.reply.is_closed());
        for _ in gone {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        if jobs.is_empty() {
            return;
        }
        let now = now(&self.limits);
        match self.transact_group(&jobs, now).await {
            Ok(answers) => {
                self.health.storage(true);
                for (job, answer) in jobs.iter().zip(&answers) {
                    if let (Ok(Outcome::Sent(SendOutcome::Stored { .. })), Op::Send(msg, _)) =
                        (answer, &job.op)
                    {
                        self.waiters.notify(&msg.to);
                    }
                }
                for (job, answer) in jobs.into_iter().zip(answers) {
                    self.answer(job, answer);
                }
            }
            Err(GroupFail::RolledBack(fail)) if jobs.len() > 1 => {
                tracing::debug!(
                    "a group of {} rolled back ({}); running each alone",
                    jobs.len(),
                    describe(&fail)
                );
                let alone = jobs.into_iter().map(|job| {
                    let this = Arc::clone(self);
                    async move { this.run_alone(job, now).await }
                });
                futures_util::stream::iter(alone)
                    .buffer_unordered(ALONE_AT_ONCE)
                    .collect::<Vec<()>>()
                    .await;
            }
            Err(GroupFail::RolledBack(fail)) => {
                let job = jobs.into_iter().next().expect("one job");
                if transient(&fail) {
                    self.run_alone(job, now).await;
                } else {
                    self.failed(job, &fail);
                }
            }
            Err(GroupFail::Unknown(fail)) => {
                for job in jobs {
                    self.failed(job, &fail);
                }
            }
        }
    }

    /// One request as a group of its own, tried again after a deadlock or
    /// serialization failure.
    async fn run_alone(&self, job: Job, now: f64) {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.transact_group(std::slice::from_ref(&job), now).await {
                Ok(mut answers) => {
                    self.health.storage(true);
                    let answer = answers.pop().expect("one answer");
                    if let (Ok(Outcome::Sent(SendOutcome::Stored { .. })), Op::Send(msg, _)) =
                        (&answer, &job.op)
                    {
                        self.waiters.notify(&msg.to);
                    }
                    return self.answer(job, answer);
                }
                Err(GroupFail::RolledBack(fail)) if transient(&fail) && tries < TRIES => continue,
                Err(GroupFail::RolledBack(fail) | GroupFail::Unknown(fail)) => {
                    return self.failed(job, &fail)
                }
            }
        }
    }

    fn failed(&self, job: Job, fail: &Fail) {
        self.health.storage(false);
        metrics::counter!("retalk_storage_errors_total", "stage" => "commit").increment(1);
        tracing::error!("database request failed: {}", describe(fail));
        self.answer(job, Err(unavailable()));
    }

    fn answer(&self, job: Job, answer: Answer) {
        let status = match &answer {
            Ok(_) => 200,
            Err(e) => e.status(),
        };
        metrics::counter!(
            "retalk_requests_total",
            "tool" => job.op.tool(),
            "status" => crate::metrics::status_label(status)
        )
        .increment(1);
        let _ = job.reply.send(answer);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// The group's transaction (see the module docs); an answer per job.
    async fn transact_group(&self, jobs: &[Job], now: f64) -> Result<Vec<Answer>, GroupFail> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut answers: Vec<Option<Answer>> = jobs.iter().map(|_| None).collect();

        // Step 2: nonces, recipients, refusals.
        let mut seen = HashSet::new();
        let mut nonces = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if let Some(nonce) = &job.nonce {
                if seen.insert(nonce.as_str()) {
                    nonces.push(nonce.as_str());
                } else {
                    answers[i] = Some(Err(replay()));
                }
            }
        }
        let sends: Vec<usize> = (0..jobs.len())
            .filter(|&i| answers[i].is_none() && matches!(jobs[i].op, Op::Send(..)))
            .collect();
        let (to, hashes): (Vec<&str>, Vec<&str>) = sends
            .iter()
            .map(|&i| match &jobs[i].op {
                Op::Send(msg, hash) => (msg.to.as_str(), hash.as_str()),
                _ => unreachable!("filtered to sends"),
            })
            .unzip();
        let (s_nonce, s_known, s_refused) = try_join3(
            tx.prepare_cached(
                "INSERT INTO retalk_nonces(nonce, ts) \
                 SELECT n, $2::float8 FROM unnest($1::text[]) AS n \
                 ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            ),
            tx.prepare_cached("SELECT id FROM retalk_users WHERE id = ANY($1::text[])"),
            tx.prepare_cached(
                "SELECT r.recipient, r.hash, r.sig FROM retalk_refused r \
                 JOIN unnest($1::text[], $2::text[]) AS u(recipient, hash) \
                 ON r.recipient = u.recipient AND r.hash = u.hash \
                 WHERE r.ts > $3::float8",
            ),
        )
        .await?;
        let cutoff = if self.limits.refused_ttl_secs > 0.0 {
            now - self.limits.refused_ttl_secs
        } else {
            f64::NEG_INFINITY
        };
        let (fresh, known, refused) = try_join3(
            async {
                match nonces.is_empty() {
                    true => Ok(Vec::new()),
                    false => tx.query(&s_nonce, &[&nonces, &now]).await,
                }
            },
            async {
                match to.is_empty() {
                    true => Ok(Vec::new()),
                    false => tx.query(&s_known, &[&to]).await,
                }
            },
            async {
                match to.is_empty() {
                    true => Ok(Vec::new()),
                    false => tx.query(&s_refused, &[&to, &hashes, &cutoff]).await,
                }
            },
        )
        .await?;
        let fresh: HashSet<String> = fresh.iter().map(|r| r.get(0)).collect();
        for (i, job) in jobs.iter().enumerate() {
            if let (None, Some(nonce)) = (&answers[i], &job.nonce) {
                if !fresh.contains(nonce.as_str()) {
                    answers[i] = Some(Err(replay()));
                }
            }
        }
        let known: HashSet<String> = known.iter().map(|r| r.get(0)).collect();
        let refused: HashMap<(String, String), String> = refused
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
        let mut candidates = Vec::new();
        for &i in &sends {
            if answers[i].is_some() {
                continue;
            }
            let Op::Send(msg, hash) = &jobs[i].op else {
                unreachable!("filtered to sends")
            };
            let to = msg.to.as_str();
            if !known.contains(to) {
                answers[i] = Some(Err(WireError::NotFound(format!(
                    "unknown recipient: {}",
                    msg.to
                ))));
            } else if let Some(sig) = refused.get(&(to.to_owned(), hash.clone())) {
                answers[i] = Some(Ok(Outcome::Sent(SendOutcome::Refused {
                    refused: true,
                    hash: hash.clone(),
                    sig: sig.clone(),
                })));
            } else {
                candidates.push(Candidate {
                    job: i,
                    sender: jobs[i].caller.as_str(),
                    to,
                    mtype: i32::from(u8::from(msg.mtype)),
                    body: msg.body.as_str(),
                });
            }
        }

        // Step 3: locks, in one order for every group.
        let mailboxes: Vec<&str> = candidates
            .iter()
            .map(|c| c.to)
            .chain(jobs.iter().enumerate().filter_map(|(i, j)| match &j.op {
                Op::Read { peek: false, .. } if answers[i].is_none() => Some(j.caller.as_str()),
                _ => None,
            }))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let publishers: Vec<&str> = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| match &j.op {
                Op::Publish(_) if answers[i].is_none() => Some(j.caller.as_str()),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let caps = &self.limits.mailbox;
        let pairs: Vec<(&str, &str)> = if caps.per_sender > 0 {
            candidates
                .iter()
                .map(|c| (c.to, c.sender))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let (pair_to, pair_from): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        let (s_create, s_lock, s_pairs, s_users) = try_join4(
            tx.prepare_cached(
                "INSERT INTO retalk_mailboxes(recipient, count, bytes) \
                 SELECT r, 0, 0 FROM unnest($1::text[]) AS r ORDER BY r \
                 ON CONFLICT (recipient) DO NOTHING",
            ),
            tx.prepare_cached(
                "SELECT recipient, count, bytes FROM retalk_mailboxes \
                 WHERE recipient = ANY($1::text[]) ORDER BY recipient FOR UPDATE",
            ),
            tx.prepare_cached(
                "SELECT u.r, u.s, (SELECT COUNT(*) FROM (SELECT 1 FROM retalk_messages m \
                 WHERE m.recipient = u.r AND m.sender = u.s LIMIT $3::int8) x)::int8 \
                 FROM unnest($1::text[], $2::text[]) AS u(r, s)",
            ),
            tx.prepare_cached(
                "SELECT id FROM retalk_users WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            ),
        )
        .await?;
        let per_sender_cap = caps.per_sender as i64;
        // Sent in this order on one connection: the counts are read after
        // the locks are held.
        let (_, totals, from_sender, _) = try_join4(
            async {
                match mailboxes.is_empty() {
                    true => Ok(0),
                    false => tx.execute(&s_create, &[&mailboxes]).await,
                }
            },
            async {
                match mailboxes.is_empty() {
                    true => Ok(Vec::new()),
                    false => tx.query(&s_lock, &[&mailboxes]).await,
                }
            },
            async {
                match pairs.is_empty() {
                    true => Ok(Vec::new()),
                    false => {
                        tx.query(&s_pairs, &[&pair_to, &pair_from, &per_sender_cap])
                            .await
                    }
                }
            },
            async {
                match publishers.is_empty() {
                    true => Ok(Vec::new()),
                    false => tx.query(&s_users, &[&publishers]).await,
                }
            },
        )
        .await?;
        let mut totals: HashMap<String, (u64, u64)> = totals
            .iter()
            .map(|r| {
                let (n, b): (i64, i64) = (r.get(1), r.get(2));
                (r.get(0), (n.max(0) as u64, b.max(0) as u64))
            })
            .collect();
        let mut from_sender: HashMap<(String, String), u64> = from_sender
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get::<_, i64>(2).max(0) as u64))
            .collect();

        // The caps, in request order.
        let mut stored = Vec::new();
        let mut added: HashMap<&str, (i64, i64)> = HashMap::new();
        for c in &candidates {
            let (waiting, bytes) = totals.get(c.to).copied().unwrap_or((0, 0));
            let size = c.body.len() as u64;
            let sender_count = from_sender
                .get(&(c.to.to_owned(), c.sender.to_owned()))
                .copied()
                .unwrap_or(0);
            let full = if caps.messages > 0 && waiting >= caps.messages {
                Some(format!(
                    "mailbox full: {} has {waiting} undelivered messages (cap {})",
                    c.to, caps.messages
                ))
            } else if caps.per_sender > 0 && sender_count >= caps.per_sender {
                Some(format!(
                    "mailbox full for sender: {} already has {sender_count} undelivered \
                     messages for {} (per-sender cap {})",
                    c.sender, c.to, caps.per_sender
                ))
            } else if caps.bytes > 0 && bytes + size > caps.bytes {
                Some(format!(
                    "mailbox full: {} has {bytes} bytes of undelivered messages and this one \
                     is {size} (cap {} bytes)",
                    c.to, caps.bytes
                ))
            } else {
                None
            };
            if let Some(text) = full {
                answers[c.job] = Some(Err(WireError::LimitExceeded(format!(
                    "{text}; resend later from your outbox"
                ))));
                continue;
            }
            totals.insert(c.to.to_owned(), (waiting + 1, bytes + size));
            if caps.per_sender > 0 {
                from_sender.insert((c.to.to_owned(), c.sender.to_owned()), sender_count + 1);
            }
            let e = added.entry(c.to).or_default();
            e.0 += 1;
            e.1 += size as i64;
            stored.push(c);
        }

        // Step 4: the messages, the totals, the wake-ups.
        if !stored.is_empty() {
            let senders: Vec<&str> = stored.iter().map(|c| c.sender).collect();
            let recipients: Vec<&str> = stored.iter().map(|c| c.to).collect();
            let mtypes: Vec<i32> = stored.iter().map(|c| c.mtype).collect();
            let bodies: Vec<&str> = stored.iter().map(|c| c.body).collect();
            let (d_to, d_count, d_bytes) = {
                let mut d: Vec<(&str, i64, i64)> =
                    added.iter().map(|(r, (n, b))| (*r, *n, *b)).collect();
                d.sort_unstable();
                let to: Vec<&str> = d.iter().map(|x| x.0).collect();
                let n: Vec<i64> = d.iter().map(|x| x.1).collect();
                let b: Vec<i64> = d.iter().map(|x| x.2).collect();
                (to, n, b)
            };
            let (s_insert, s_totals, s_notify) = try_join3(
                tx.prepare_cached(
                    "INSERT INTO retalk_messages(ts, sender, recipient, mtype, body) \
                     SELECT $1::float8, m.sender, m.recipient, m.mtype, m.body \
                     FROM unnest($2::text[], $3::text[], $4::int4[], $5::text[]) \
                     WITH ORDINALITY AS m(sender, recipient, mtype, body, n) \
                     ORDER BY m.n RETURNING id",
                ),
                tx.prepare_cached(
                    "UPDATE retalk_mailboxes AS mb SET count = mb.count + d.c, \
                     bytes = mb.bytes + d.b \
                     FROM unnest($1::text[], $2::int8[], $3::int8[]) AS d(r, c, b) \
                     WHERE mb.recipient = d.r",
                ),
                tx.prepare_cached("SELECT pg_notify($1::text, r) FROM unnest($2::text[]) AS r"),
            )
            .await?;
            let notify = self.notify;
            let (ids, _, _) = try_join3(
                tx.query(&s_insert, &[&now, &senders, &recipients, &mtypes, &bodies]),
                tx.execute(&s_totals, &[&d_to, &d_count, &d_bytes]),
                async {
                    match notify {
                        // Delivered to the listening replicas when (and
                        // only if) this transaction commits.
                        true => tx.query(&s_notify, &[&CHANNEL, &d_to]).await.map(|_| ()),
                        false => Ok(()),
                    }
                },
            )
            .await?;
            // The ids come from the table's sequence, drawn row by row in
            // the order inserted (`ORDER BY m.n`): ascending in request
            // order, whatever order RETURNING lists them in.
            let mut ids: Vec<i64> = ids.iter().map(|r| r.get(0)).collect();
            if ids.len() != stored.len() {
                return Err(GroupFail::RolledBack(Fail::Db(super::PgError::Schema(
                    format!("stored {} messages but got {} ids", stored.len(), ids.len()),
                ))));
            }
            ids.sort_unstable();
            for (c, id) in stored.iter().zip(ids) {
                answers[c.job] = Some(Ok(Outcome::Sent(SendOutcome::Stored {
                    message_id: id,
                    ts: now,
                })));
            }
        }

        // Everything else, one by one, on the rows locked above.
        for (i, job) in jobs.iter().enumerate() {
            if answers[i].is_some() {
                continue;
            }
            answers[i] = Some(match self.execute(&tx, job, now).await {
                Ok(outcome) => Ok(outcome),
                Err(Fail::Refused(e)) => Err(e),
                Err(fail) => return Err(GroupFail::RolledBack(fail)),
            });
        }

        // Step 5.
        match tx.commit().await {
            Ok(()) => {}
            // The server answered: it rolled the transaction back.
            Err(e) if e.code().is_some() => return Err(GroupFail::RolledBack(e.into())),
            Err(e) => return Err(GroupFail::Unknown(e.into())),
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(unavailable())))
            .collect())
    }
}

fn replay() -> WireError {
    metrics::counter!("retalk_verification_failures_total", "reason" => "replay").increment(1);
    WireError::Auth(AuthError::Replay)
}

fn describe(fail: &Fail) -> String {
    match fail {
        Fail::Db(e) => e.to_string(),
        Fail::Refused(e) => e.to_string(),
    }
}
