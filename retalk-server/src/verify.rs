//! Parsing and signature checks, on a small pool of plain threads.
//!
//! An Ed25519 verification costs tens of microseconds; done on the async
//! runtime's worker threads, a burst of them would delay every other
//! connection (including waiting readers' wake-ups). So the HTTP layer hands
//! the raw body to this pool, which parses it, checks the signature, and
//! forwards the authenticated operation straight to the writer with the
//! request's reply channel. The async task wakes once, with the final
//! answer.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use axum::body::Bytes;
use retalk::proto::tools::{Nack, ReadMessages};
use retalk::proto::{AuthError, Call, Nonce, SignedRequest, UserId, WireError};
use sha2::{Digest, Sha256};

use crate::writer::{unavailable, Job, Op, ReplyTx, WriterHandle};

/// A request body to check, and where its final answer goes.
pub struct VerifyJob {
    /// The raw request body.
    pub body: Bytes,
    /// Where the answer goes (passed on to the writer when the request is
    /// valid).
    pub reply: ReplyTx,
}

enum Msg {
    Job(VerifyJob),
    Stop,
}

/// Sends bodies to the verifier pool.
#[derive(Clone)]
pub struct VerifierHandle {
    tx: mpsc::Sender<Msg>,
    threads: usize,
}

impl VerifierHandle {
    /// Queues a body; answered "unavailable" at once if the pool stopped.
    pub fn submit(&self, job: VerifyJob) {
        if let Err(mpsc::SendError(Msg::Job(job))) = self.tx.send(Msg::Job(job)) {
            let _ = job.reply.send(Err(unavailable()));
        }
    }

    /// Asks every pool thread to stop after the bodies queued before this.
    pub fn stop(&self) {
        for _ in 0..self.threads {
            let _ = self.tx.send(Msg::Stop);
        }
    }
}

/// An authenticated request, ready for the writer.
#[derive(Debug)]
pub struct Checked {
    /// The verified caller.
    pub caller: UserId,
    /// The request's nonce (not yet checked against the relay's memory).
    pub nonce: Nonce,
    /// What to do.
    pub op: Op,
}

/// What the pool needs to check a request.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Accepted audiences.
    pub audiences: Arc<[String]>,
    /// See [`crate::Config::clock_offset_secs`].
    pub clock_offset_secs: i64,
}

/// Starts `threads` verifier threads feeding `writer`.
pub fn spawn(
    threads: usize,
    verifier: Verifier,
    writer: WriterHandle,
) -> std::io::Result<(VerifierHandle, Vec<JoinHandle<()>>)> {
    let threads = threads.max(1);
    let (tx, rx) = mpsc::channel::<Msg>();
    let rx = Arc::new(Mutex::new(rx));
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let verifier = verifier.clone();
        let writer = writer.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("retalk-verify-{i}"))
                .spawn(move || loop {
                    // Only one thread waits in recv at a time; the others
                    // wait for the lock, which is released as soon as a
                    // message is taken.
                    let msg = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match msg {
                        Ok(Msg::Job(job)) => {
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                verifier.handle(job, &writer)
                            }));
                        }
                        Ok(Msg::Stop) | Err(_) => return,
                    }
                })?,
        );
    }
    Ok((VerifierHandle { tx, threads }, handles))
}

impl Verifier {
    fn handle(&self, job: VerifyJob, writer: &WriterHandle) {
        match self.check(&job.body) {
            Ok(Checked { caller, nonce, op }) => writer.submit(Job {
                caller,
                nonce: Some(nonce),
                op,
                reply: job.reply,
            }),
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }

    /// Parses and authenticates a request body.
    pub fn check(&self, body: &[u8]) -> Result<Checked, WireError> {
        let req = SignedRequest::parse(body)?;
        let now = crate::unix_now(self.clock_offset_secs).floor() as i64;
        let caller = req
            .auth
            .verify(req.call.name(), &self.audiences, &req.args_sha256, now)?
            .clone();
        let op = match req.call {
            Call::PublishKeys(p) => Op::Publish(p),
            Call::CountKeys(_) => Op::CountKeys,
            Call::GetKeys(g) => Op::GetKeys(g.peer),
            Call::ClaimKey(c) => Op::ClaimKey(c.peer),
            Call::SendMessage(m) => {
                let hash = hex::encode(Sha256::digest(m.body.as_bytes()));
                Op::Send(m, hash)
            }
            Call::ReadMessages(ReadMessages { peer, peek, wait }) => Op::Read { peer, peek, wait },
            Call::Nack(n) => {
                // The refusal is handed to senders as proof; never store one
                // the caller did not sign.
                let sig = ed25519_dalek::Signature::from_bytes(&n.sig_bytes());
                let text = Nack::signed_text(caller.as_str(), &n.hash);
                req.auth
                    .signing_key
                    .verifying_key()
                    .verify_strict(text.as_bytes(), &sig)
                    .map_err(|_| {
                        AuthError::Other(format!(
                            "bad nack signature: sig must be your signature over \"nack|{caller}|<hash>\""
                        ))
                    })?;
                Op::Nack(n)
            }
        };
        Ok(Checked {
            caller,
            nonce: req.auth.nonce,
            op,
        })
    }
}
