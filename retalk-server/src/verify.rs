//! Parsing and signature checks, on a small pool of plain threads.
//!
//! An Ed25519 verification costs tens of microseconds; done on the async
//! runtime's worker threads, a burst of them would delay every other
//! connection (including waiting readers' wake-ups). So the HTTP layer hands
//! the raw body to this pool, which parses it, checks the signature, and
//! forwards the authenticated operation straight to the writer with the
//! request's reply channel. The async task wakes once, with the final
//! answer.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use axum::body::Bytes;
use retalk_proto::tools::{Nack, ReadMessages};
use retalk_proto::{AuthError, Call, Nonce, SignedRequest, UserId, WireError};
use sha2::{Digest, Sha256};

use crate::storage::Storage;
use crate::writer::{unavailable, Job, Op, ReplyTx};

/// A request body to check, and where its final answer goes.
pub struct VerifyJob {
    /// The raw request body.
    pub body: Bytes,
    /// Where the answer goes (passed on to the writer when the request is
    /// valid).
    pub reply: ReplyTx,
}

/// The pool's queue: bodies waiting, and whether the pool is stopping.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<VerifyJob>,
    stopping: bool,
    /// Threads still running (for answering late bodies "unavailable").
    running: usize,
    /// Threads waiting for work (counted under the lock before they wait):
    /// a burst is shared with them, and only they need a wake-up.
    idle: usize,
    /// Wake-ups sent that their threads have not yet taken up (a woken
    /// thread needs microseconds to run, and every body arriving meanwhile
    /// would otherwise send another, each a system call).
    waking: usize,
}

impl QueueState {
    /// Whether to wake a waiting thread for new work, counting the wake-up
    /// as sent. Only a thread waiting for work needs one (the others look
    /// at the queue before they wait), and only if no wake-up is already on
    /// its way to it: `notify_one` is a system call even when it wakes
    /// nobody, and was one per request before this check.
    fn wake_one(&mut self) -> bool {
        if self.idle > self.waking {
            self.waking += 1;
            true
        } else {
            false
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends bodies to the verifier pool.
#[derive(Clone)]
pub struct VerifierHandle {
    queue: Arc<Queue>,
}

impl VerifierHandle {
    /// Queues a body; answered "unavailable" at once if the pool stopped.
    pub fn submit(&self, job: VerifyJob) {
        let mut state = self.queue.lock();
        if state.running == 0 {
            drop(state);
            let _ = job.reply.send(Err(unavailable()));
            return;
        }
        state.jobs.push_back(job);
        let wake = state.wake_one();
        drop(state);
        if wake {
            self.queue.ready.notify_one();
        }
    }

    /// Asks every pool thread to stop once the bodies queued before this
    /// are checked.
    pub fn stop(&self) {
        self.queue.lock().stopping = true;
        self.queue.ready.notify_all();
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

/// A short name for why a request failed verification (a metrics label).
fn reason(e: &WireError) -> &'static str {
    match e {
        WireError::Auth(AuthError::Missing | AuthError::MissingField(_)) => "missing_auth",
        WireError::Auth(AuthError::Malformed(_)) => "malformed_auth",
        WireError::Auth(AuthError::KeysMismatch) => "keys_mismatch",
        WireError::Auth(AuthError::Stale) => "stale",
        WireError::Auth(AuthError::BadSignature) => "bad_signature",
        WireError::Auth(AuthError::Replay) => "replay",
        WireError::Auth(AuthError::Other(_)) => "bad_nack_signature",
        _ => "bad_request",
    }
}

/// What the pool needs to check a request.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Accepted audiences.
    pub audiences: Arc<[String]>,
    /// See [`crate::Config::clock_offset_secs`].
    pub clock_offset_secs: i64,
    /// Per-user budgets, applied to the verified caller (`None`: off).
    pub rate: Option<Arc<crate::admission::RateLimits>>,
}

/// Most requests whose signatures are checked as one batch. Batch
/// verification costs about half as much per signature as one-by-one;
/// batches form only when requests queue up, so a lightly loaded relay
/// checks each request alone with no added latency.
pub const MAX_VERIFY_BATCH: usize = 64;

/// Smallest share of a burst worth handing to another thread: below this,
/// one thread checks everything queued (batches this small gain little and
/// a hand-off costs a wake-up).
pub const MIN_SPLIT: usize = 8;

/// Starts `threads` verifier threads feeding `writer`.
pub fn spawn(
    threads: usize,
    verifier: Verifier,
    writer: Storage,
) -> std::io::Result<(VerifierHandle, Vec<JoinHandle<()>>)> {
    let threads = threads.max(1);
    let queue = Arc::new(Queue::default());
    queue.lock().running = threads;
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let queue = Arc::clone(&queue);
        let verifier = verifier.clone();
        let writer = writer.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("retalk-verify-{i}"))
                .spawn(move || {
                    while let Some(jobs) = take_batch(&queue) {
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            verifier.handle(jobs, &writer)
                        }));
                    }
                })?,
        );
    }
    Ok((VerifierHandle { queue }, handles))
}

/// Takes the next batch, waiting for one; `None` once the pool is stopping
/// and nothing is left (the thread then leaves the pool).
///
/// A burst is shared out: a thread takes its share of what is queued,
/// counting itself and the threads waiting for work (at least
/// [`MIN_SPLIT`], at most [`MAX_VERIFY_BATCH`]), and wakes another for the
/// rest, so a burst from many clients at once is checked on every core
/// instead of as one batch on one core while the others wait.
fn take_batch(queue: &Queue) -> Option<Vec<VerifyJob>> {
    let mut state = queue.lock();
    while state.jobs.is_empty() {
        if state.stopping {
            state.running -= 1;
            return None;
        }
        state.idle += 1;
        state = queue
            .ready
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
        state.idle -= 1;
        // Woken by a notification or spuriously: either way one fewer is on
        // its way (an undercount only costs a spare wake-up later).
        state.waking = state.waking.saturating_sub(1);
    }
    let queued = state.jobs.len();
    let share = queued.div_ceil(state.idle + 1).max(MIN_SPLIT);
    let take = share.min(queued).min(MAX_VERIFY_BATCH);
    let jobs: Vec<VerifyJob> = state.jobs.drain(..take).collect();
    let more = !state.jobs.is_empty() && state.wake_one();
    drop(state);
    if more {
        queue.ready.notify_one();
    }
    Some(jobs)
}

impl Verifier {
    fn handle(&self, jobs: Vec<VerifyJob>, writer: &Storage) {
        // How well bursts batch: a batch of one costs about twice as much
        // per signature as a batch of dozens.
        metrics::histogram!("retalk_verify_batch_size").record(jobs.len() as f64);
        let bodies: Vec<&[u8]> = jobs.iter().map(|j| &j.body[..]).collect();
        let results = self.check_batch(&bodies);
        for (job, result) in jobs.into_iter().zip(results) {
            if let Err(e) = &result {
                metrics::counter!("retalk_verification_failures_total", "reason" => reason(e))
                    .increment(1);
            }
            let result = result.and_then(|checked| match &self.rate {
                Some(rate) => rate.check_user(&checked.caller).map(|()| checked),
                None => Ok(checked),
            });
            match result {
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
    }

    fn now(&self) -> i64 {
        crate::unix_now(self.clock_offset_secs).floor() as i64
    }

    /// Parses and authenticates one request body.
    #[cfg(test)]
    pub fn check(&self, body: &[u8]) -> Result<Checked, WireError> {
        let now = self.now();
        let req = Self::parse(body, now)?;
        self.verify_alone(&req, false)?;
        Self::finish(req)
    }

    /// Parses and authenticates several request bodies, with one batch
    /// signature check when there are several; the answers are the same as
    /// [`Verifier::check`]'s for each body.
    pub fn check_batch(&self, bodies: &[&[u8]]) -> Vec<Result<Checked, WireError>> {
        let now = self.now();
        let parsed: Vec<Result<SignedRequest, WireError>> =
            bodies.iter().map(|b| Self::parse(b, now)).collect();
        let ready: Vec<&SignedRequest> = parsed.iter().filter_map(|r| r.as_ref().ok()).collect();
        let batch_ok = ready.len() > 1 && self.verify_together(&ready);
        // After a failed batch, each is a suspect: checked the way that is
        // cheapest when it fails (see `sig::verify_suspect`).
        let suspect = ready.len() > 1 && !batch_ok;
        parsed
            .into_iter()
            .map(|req| {
                let req = req?;
                if !batch_ok {
                    // One by one, trying every audience: also how the
                    // culprits of a failed batch are found.
                    self.verify_alone(&req, suspect)?;
                }
                Self::finish(req)
            })
            .collect()
    }

    /// The signature check of one request, for each audience in turn
    /// (claims were checked by [`Verifier::parse`]). The rule is
    /// [`crate::sig`]'s, the same one the batch check applies.
    fn verify_alone(&self, req: &SignedRequest, suspect: bool) -> Result<(), WireError> {
        let key = req.auth.signing_key.as_verifying_key();
        let check = if suspect {
            crate::sig::verify_suspect
        } else {
            crate::sig::verify
        };
        let ok = self.audiences.iter().any(|audience| {
            let text = req
                .auth
                .signed_text(req.call.name(), audience, &req.args_sha256);
            check(key, &req.auth.sig, text.as_bytes())
        });
        if ok {
            Ok(())
        } else {
            Err(WireError::Auth(AuthError::BadSignature))
        }
    }

    /// Whether every request's signature verifies for the first audience,
    /// checked as one batch under the same rule as [`Verifier::verify_alone`]
    /// (see [`crate::sig`]: cofactored in both, so a request's answer never
    /// depends on the other requests in its batch).
    fn verify_together(&self, ready: &[&SignedRequest]) -> bool {
        let Some(audience) = self.audiences.first() else {
            return false;
        };
        let texts: Vec<String> = ready
            .iter()
            .map(|r| r.auth.signed_text(r.call.name(), audience, &r.args_sha256))
            .collect();
        crate::sig::verify_all(ready.iter().zip(&texts).map(|(r, t)| {
            (
                r.auth.signing_key.as_verifying_key(),
                &r.auth.sig,
                t.as_bytes(),
            )
        }))
    }

    /// Parsing and the checks that come before the signature.
    fn parse(body: &[u8], now: i64) -> Result<SignedRequest, WireError> {
        let req = SignedRequest::parse(body)?;
        req.auth.check_claims(now)?;
        Ok(req)
    }

    /// The operation of an authenticated request.
    fn finish(req: SignedRequest) -> Result<Checked, WireError> {
        let caller = req.auth.user_id.clone();
        let op = match req.call {
            Call::PublishKeys(p) => Op::Publish(p),
            Call::CountKeys(_) => Op::CountKeys,
            Call::GetKeys(g) => Op::GetKeys(g.peer),
            Call::ClaimKey(c) => Op::ClaimKey(c.peer),
            Call::SendMessage(m) => {
                let hash = retalk_proto::lower_hex(&Sha256::digest(m.body.as_bytes()));
                Op::Send(m, hash)
            }
            Call::ReadMessages(ReadMessages { peer, peek, wait }) => Op::Read { peer, peek, wait },
            Call::Nack(n) => {
                // The refusal is handed to senders as proof; never store one
                // the caller did not sign.
                let text = Nack::signed_text(caller.as_str(), &n.hash);
                n.sig_bytes()
                    .filter(|sig| {
                        crate::sig::verify(
                            req.auth.signing_key.as_verifying_key(),
                            sig,
                            text.as_bytes(),
                        )
                    })
                    .ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(n: usize) -> Queue {
        let queue = Queue::default();
        let mut state = queue.lock();
        state.running = 2;
        for _ in 0..n {
            let (reply, _) = tokio::sync::oneshot::channel();
            state.jobs.push_back(VerifyJob {
                body: Bytes::new(),
                reply,
            });
        }
        drop(state);
        queue
    }

    #[test]
    fn a_burst_is_shared_with_idle_threads_and_a_trickle_is_not() {
        // Another thread is waiting: the first taker leaves it half.
        let queue = queued(64);
        queue.lock().idle = 1;
        assert_eq!(take_batch(&queue).unwrap().len(), 32);
        queue.lock().idle = 0;
        assert_eq!(take_batch(&queue).unwrap().len(), 32);
        // Nobody waiting: one batch, up to the cap.
        let queue = queued(300);
        assert_eq!(take_batch(&queue).unwrap().len(), MAX_VERIFY_BATCH);
        // Too few to be worth sharing.
        let queue = queued(10);
        queue.lock().idle = 1;
        assert_eq!(take_batch(&queue).unwrap().len(), MIN_SPLIT);
        queue.lock().idle = 0;
        assert_eq!(take_batch(&queue).unwrap().len(), 2);
        queue.lock().stopping = true;
        assert!(take_batch(&queue).is_none(), "stopping and empty");
        assert_eq!(queue.lock().running, 1);
    }
    use retalk_proto::tools::CountKeys;
    use retalk_proto::{build_request, Dialect, KeyPairSigner};

    fn now() -> i64 {
        crate::unix_now(0) as i64
    }

    /// A batch with good and bad requests mixed gives each the answer it
    /// would get alone.
    #[test]
    fn batch_answers_match_single_answers() {
        let v = Verifier {
            audiences: vec!["http://a".to_owned(), "http://b".to_owned()].into(),
            clock_offset_secs: 0,
            rate: None,
        };
        let s = KeyPairSigner::random();
        let good = |aud: &str| build_request(&CountKeys, &s, aud, Dialect::Both, now()).unwrap();
        let mut tampered = good("http://a");
        let at = tampered.len() - 10;
        tampered[at] ^= 1;
        let bodies: Vec<Vec<u8>> = vec![
            good("http://a"),
            good("http://b"),
            good("http://elsewhere"),
            build_request(&CountKeys, &s, "http://a", Dialect::Both, now() - 1000).unwrap(),
            b"not json".to_vec(),
            tampered,
            good("http://a"),
        ];
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let batch: Vec<_> = v
            .check_batch(&refs)
            .into_iter()
            .map(|r| r.map(|c| c.caller))
            .collect();
        let single: Vec<_> = refs.iter().map(|b| v.check(b).map(|c| c.caller)).collect();
        assert_eq!(batch, single);
        assert!(batch[0].is_ok() && batch[1].is_ok() && batch[6].is_ok());
        assert_eq!(batch[2], Err(WireError::Auth(AuthError::BadSignature)));
        assert_eq!(batch[3], Err(WireError::Auth(AuthError::Stale)));
        assert!(batch[4].is_err() && batch[5].is_err());

        // All good: accepted as one batch.
        let many: Vec<Vec<u8>> = (0..10).map(|_| good("http://a")).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        assert!(v.check_batch(&refs).iter().all(Result::is_ok));
    }

    /// A signer whose Ed25519 key has a small-order component (`aB + T`),
    /// signing honestly with its own `a`: what the issue saw accepted about
    /// one time in ten inside a burst and refused alone.
    struct MixedOrderSigner {
        a: curve25519_dalek::scalar::Scalar,
        public: [u8; 32],
        identity_key: String,
    }

    impl MixedOrderSigner {
        fn new(seed: u8, torsion: usize) -> Self {
            use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
            let a = curve25519_dalek::scalar::Scalar::from_bytes_mod_order([seed; 32]);
            let point = ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[torsion];
            MixedOrderSigner {
                a,
                public: point.compress().to_bytes(),
                identity_key: KeyPairSigner::random().identity_key,
            }
        }
    }

    impl retalk_proto::RequestSigner for MixedOrderSigner {
        fn identity_key(&self) -> String {
            self.identity_key.clone()
        }
        fn signing_key(&self) -> String {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.public)
        }
        fn sign(&self, message: &[u8]) -> [u8; 64] {
            use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
            use curve25519_dalek::scalar::Scalar;
            use sha2::Sha512;
            let r = Scalar::from_bytes_mod_order_wide(
                &Sha512::new().chain_update(message).finalize().into(),
            );
            let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
            let k = Scalar::from_bytes_mod_order_wide(
                &Sha512::new()
                    .chain_update(big_r)
                    .chain_update(self.public)
                    .chain_update(message)
                    .finalize()
                    .into(),
            );
            let s = r + k * self.a;
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&big_r);
            sig[32..].copy_from_slice(s.as_bytes());
            sig
        }
    }

    /// The defect: a request's answer depended on its batch. Now every
    /// request gets the same answer alone and in any batch, over many
    /// batches (each with fresh random coefficients).
    #[test]
    fn mixed_order_keys_get_the_same_answer_alone_and_batched() {
        let v = Verifier {
            audiences: vec!["http://a".to_owned()].into(),
            clock_offset_secs: 0,
            rate: None,
        };
        let honest = KeyPairSigner::random();
        for round in 0..40u8 {
            let odd = MixedOrderSigner::new(round.wrapping_add(1), 1 + usize::from(round) % 7);
            let mut bodies: Vec<Vec<u8>> = (0..6)
                .map(|_| {
                    build_request(&CountKeys, &honest, "http://a", Dialect::Both, now()).unwrap()
                })
                .collect();
            bodies.insert(
                usize::from(round) % 6,
                build_request(&CountKeys, &odd, "http://a", Dialect::Both, now()).unwrap(),
            );
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let batch: Vec<_> = v
                .check_batch(&refs)
                .into_iter()
                .map(|r| r.map(|c| c.caller))
                .collect();
            let single: Vec<_> = refs.iter().map(|b| v.check(b).map(|c| c.caller)).collect();
            assert_eq!(batch, single, "round {round}");
            assert!(
                batch.iter().all(Result::is_ok),
                "cofactored rule: the owner's signature holds"
            );
        }
    }
}
