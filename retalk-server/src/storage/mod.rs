//! The storage contract every database backend of the relay keeps, and the
//! handle the HTTP layer and the verifiers use to reach the backend.
//!
//! A backend receives authenticated [`Job`]s and answers each one through
//! its reply channel. Whatever the engine, an answer promises:
//!
//! * **Ok means durable.** A job is answered `Ok` only once its effect is
//!   committed (and, where the engine is told to, synced): a crash after the
//!   answer cannot undo it. A failed commit is answered
//!   [`WireError::Unavailable`](retalk_proto::WireError) and changes nothing.
//! * **The nonce travels with the effect.** A job's nonce is recorded in the
//!   same commit as its effect, and a nonce already recorded, by this
//!   process or by any other sharing the database, makes the job a replay
//!   (401) that changes nothing.
//! * **Claims and reads are serialised per user.** A one-time key is handed
//!   out once; a message stored concurrently with a read is either in that
//!   read's answer (and deleted) or left for the next one; never both, never
//!   lost.
//! * **Caps hold across the writers.** The mailbox and one-time key caps are
//!   checked in the transaction that stores, against what every process
//!   sharing the database has committed.
//! * **Wake-ups follow commits.** Once mail for a recipient is committed,
//!   readers waiting on that mailbox are woken ([`crate::waiters`]), in this
//!   process at once and, for a shared engine, in the others as a hint (see
//!   [`Backend::recheck`]).
//!
//! Backends: [`sqlite`] (the group-commit writer of [`crate::writer`], one
//! process per file) and [`postgres`] (any number of relay replicas on one
//! PostgreSQL database).

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use retalk_proto::{Nonce, UserId, WireError};
use tokio::sync::oneshot;

use crate::writer::{unavailable, Job, Op, Outcome};

/// A database backend of the relay; see the [module docs](self) for what
/// every answer promises.
pub trait Backend: Send + Sync + 'static {
    /// Queues a job; its answer goes to `job.reply` once the contract holds.
    /// A stopped backend answers "unavailable" at once.
    fn submit(&self, job: Job);

    /// Finishes what was submitted, answers it, and stops. Blocks: call it
    /// off the async runtime (the relay does, from `spawn_blocking`).
    fn stop(&self);

    /// How often a waiting read looks at its mailbox again even without a
    /// wake-up. `None` when every commit that stores mail wakes the waiters
    /// itself (one process owns the database); `Some` when wake-ups from
    /// other processes are only hints that may be lost.
    fn recheck(&self) -> Option<Duration>;
}

/// A shared handle on the relay's backend.
#[derive(Clone)]
pub struct Storage(Arc<dyn Backend>);

impl Storage {
    /// Wraps a backend.
    pub fn new(backend: impl Backend) -> Storage {
        Storage(Arc::new(backend))
    }

    /// See [`Backend::submit`].
    pub fn submit(&self, job: Job) {
        self.0.submit(job);
    }

    /// Runs `op` for `caller` and waits for the committed result.
    pub async fn call(
        &self,
        caller: UserId,
        nonce: Option<Nonce>,
        op: Op,
    ) -> Result<Outcome, WireError> {
        call_with(|job| self.submit(job), caller, nonce, op).await
    }

    /// See [`Backend::stop`].
    pub fn stop(&self) {
        self.0.stop();
    }

    /// See [`Backend::recheck`].
    pub fn recheck(&self) -> Option<Duration> {
        self.0.recheck()
    }
}

/// Submits one job through `submit` and waits for its committed answer
/// ("unavailable" if the backend drops it): [`Storage::call`], and the
/// writer's own tests, which drive a bare writer.
pub(crate) async fn call_with(
    submit: impl FnOnce(Job),
    caller: UserId,
    nonce: Option<Nonce>,
    op: Op,
) -> Result<Outcome, WireError> {
    let (reply, rx) = oneshot::channel();
    submit(Job {
        caller,
        nonce,
        op,
        reply,
    });
    rx.await.unwrap_or_else(|_| Err(unavailable()))
}
