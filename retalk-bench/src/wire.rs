//! Speaking the relay protocol: benchmark users, signed request bodies, and
//! the untimed setup calls (publishing keys, filling mailboxes).
//!
//! Everything goes through `retalk_proto`, the same code our client and
//! relay use, so a request the benchmark sends is byte-for-byte what a real
//! client would send. Requests carry both field-name dialects, which every
//! relay generation (ours, Python 0.0.1, Python 0.3.x) accepts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use retalk_proto::tools::{MessageType, PublishKeys, ReadMessages, SendMessage, Tool};
use retalk_proto::{
    build_request, Dialect, IdentityKey, KeyPairSigner, RelayInfo, RequestSigner, SigningKey,
    UserId,
};

use crate::http::{Conn, Response, Target};
use crate::stats::{Errors, Recorder};

/// Seconds since the epoch, as relays compare timestamps.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A benchmark user: a random key pair, no Olm account (the relay never sees
/// more than the public keys and opaque bodies, so none is needed).
pub struct User {
    /// Signs this user's requests.
    pub signer: KeyPairSigner,
    /// The user's id (fingerprint of the two public keys).
    pub id: UserId,
}

impl User {
    /// A fresh user.
    pub fn random() -> Self {
        let signer = KeyPairSigner::random();
        let id = UserId::fingerprint(
            &IdentityKey::parse(&signer.identity_key(), "identity_key").expect("valid key"),
            &SigningKey::parse(&signer.signing_key(), "signing_key").expect("valid key"),
        );
        User { signer, id }
    }

    /// `n` fresh users.
    pub fn many(n: usize) -> Vec<User> {
        (0..n).map(|_| User::random()).collect()
    }

    /// The `publish_keys` call that creates this user's mailbox on a relay
    /// (no one-time keys: the benchmarks never start Olm sessions).
    pub fn publish(&self) -> PublishKeys {
        PublishKeys {
            identity_key: IdentityKey::parse(&self.signer.identity_key(), "identity_key")
                .expect("valid key"),
            signing_key: SigningKey::parse(&self.signer.signing_key(), "signing_key")
                .expect("valid key"),
            one_time_keys: Vec::new(),
            fallback_key: None,
        }
    }
}

/// A `send_message` carrying `len` opaque bytes whose first eight are `seq`
/// (so a receiver can tell which send a delivery belongs to) and the rest
/// random (so no layer can compress or deduplicate them).
pub fn message(to: &UserId, len: usize, seq: u64) -> SendMessage {
    let mut bytes = vec![0u8; len.max(8)];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes[8..]);
    bytes[..8].copy_from_slice(&seq.to_be_bytes());
    SendMessage::new(to.clone(), MessageType::Normal, &bytes)
}

/// The sequence number [`message`] put into a delivered body.
pub fn message_seq(body_b64: &str) -> Option<u64> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body_b64)
        .ok()?;
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// A relay as the benchmark addresses it.
#[derive(Clone)]
pub struct Relay {
    /// Where to connect.
    pub target: Target,
    /// The URL signatures are bound to (the relay's configured audience).
    pub audience: String,
}

impl Relay {
    /// A relay at `url`, signing for `audience` (default: the URL itself).
    pub fn new(url: &str, audience: Option<&str>) -> Result<Self, String> {
        let target = Target::parse(url)?;
        let audience = audience
            .map(|a| a.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| target.url.clone());
        Ok(Relay { target, audience })
    }

    /// The full HTTP bytes of `user` calling `tool`, signed now.
    pub fn signed<T: Tool>(&self, user: &User, tool: &T) -> Vec<u8> {
        self.signed_at(user, tool, now_secs())
    }

    /// The full HTTP bytes of `user` calling `tool`, signed with timestamp
    /// `ts`.
    pub fn signed_at<T: Tool>(&self, user: &User, tool: &T, ts: i64) -> Vec<u8> {
        let body = build_request(tool, &user.signer, &self.audience, Dialect::Both, ts)
            .expect("benchmark requests are well-formed");
        self.target.post(&body)
    }

    /// Calls `tool` as `user` and decodes the result.
    pub async fn call<T: Tool>(
        &self,
        conn: &mut Conn,
        user: &User,
        tool: &T,
    ) -> Result<T::Response, String> {
        let resp = conn
            .request(&self.signed(user, tool))
            .await
            .map_err(|e| format!("{}: {e}", T::NAME))?;
        decode::<T>(&resp)
    }

    /// Like [`Relay::call`], for untimed setup: a refusal is retried (with
    /// a fresh signature) up to 20 times with growing pauses. The Python
    /// reference answers concurrent writers with "database is locked" (its
    /// SQLite connections wait at most 5 s for each other); setup must get
    /// through anyway.
    pub async fn call_retry<T: Tool>(
        &self,
        conn: &mut Conn,
        user: &User,
        tool: &T,
    ) -> Result<T::Response, String> {
        let mut attempt = 0;
        loop {
            match self.call(conn, user, tool).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt >= 20 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
            }
        }
    }

    /// `GET /info`, or `None` when the relay has none (0.0.1 has none).
    pub async fn info(&self) -> Option<RelayInfo> {
        let mut conn = Conn::new(&self.target);
        let resp = conn.request(&self.target.get("info")).await.ok()?;
        if resp.status != 200 {
            return None;
        }
        serde_json::from_slice(&resp.body).ok()
    }

    /// The longest `read_messages` wait the relay honours, if any.
    pub async fn max_wait(&self) -> Option<u64> {
        self.info().await.and_then(|i| i.max_wait)
    }

    /// Publishes every user's keys (untimed setup), `concurrency` at a time.
    pub async fn publish_all(
        &self,
        users: &Arc<Vec<User>>,
        concurrency: usize,
    ) -> Result<(), String> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency.clamp(1, users.len().max(1)) {
            let (relay, users, next) = (self.clone(), users.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(&relay.target);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(u) = users.get(i) else {
                        return Ok::<(), String>(());
                    };
                    relay.call_retry(&mut conn, u, &u.publish()).await?;
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// A `read_messages` for `user` (drain everything), with an optional
    /// wait.
    pub fn read_request(&self, user: &User, wait: Option<u64>) -> Vec<u8> {
        self.signed(
            user,
            &ReadMessages {
                peer: None,
                peek: false,
                wait,
            },
        )
    }
}

/// Decodes a tool's answer, or its error text.
pub fn decode<T: Tool>(resp: &Response) -> Result<T::Response, String> {
    if resp.status != 200 {
        return Err(format!(
            "{} refused (HTTP {}): {}",
            T::NAME,
            resp.status,
            resp.error_text()
        ));
    }
    serde_json::from_slice(&resp.body).map_err(|e| {
        format!(
            "{}: unexpected answer ({e}): {}",
            T::NAME,
            String::from_utf8_lossy(&resp.body)
        )
    })
}

/// Builds `n` request byte strings with `make(i)` on every core.
///
/// Signing costs tens of microseconds per request; done inside the timed
/// phase it would cap the generator well below the relay's rate on a
/// two-core machine, so timed phases only ever send bytes made here.
pub fn sign_parallel<F>(n: usize, make: F) -> Vec<Vec<u8>>
where
    F: Fn(usize) -> Vec<u8> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(n.max(1));
    let chunk = n.div_ceil(threads.max(1)).max(1);
    let make = &make;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let lo = (t * chunk).min(n);
                    let hi = ((t + 1) * chunk).min(n);
                    (lo..hi).map(make).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// What a closed-loop burst measured.
pub struct Burst {
    /// Per-request latency (write of the request to end of the response).
    pub latency: Recorder,
    /// Refused or failed requests.
    pub errors: Errors,
    /// Requests answered (successfully or not).
    pub done: u64,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Whether the deadline cut the burst short.
    pub truncated: bool,
    /// Connections opened during the burst (reconnects included).
    pub connects: u64,
}

/// Sends pre-built `requests` over `concurrency` connections, each sending
/// its next request as soon as the previous one is answered (closed loop),
/// until all are sent or `deadline` passes. Connections are opened before
/// the clock starts.
pub async fn burst(
    target: &Target,
    requests: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    deadline: Instant,
) -> Burst {
    burst_over(
        std::slice::from_ref(target),
        requests,
        concurrency,
        deadline,
    )
    .await
}

/// [`burst`] with connection `i` going to `targets[i % targets.len()]`
/// (replicas of one relay behind no load balancer: the requests must be
/// signed for an audience every target accepts).
pub async fn burst_over(
    targets: &[Target],
    requests: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    deadline: Instant,
) -> Burst {
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::new();
    for i in 0..concurrency.max(1) {
        let mut c = Conn::new(&targets[i % targets.len().max(1)]);
        // A failure here shows up as request errors below.
        let _ = c.connect().await;
        conns.push(c);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut errors = Errors::default();
            let mut done = 0u64;
            let mut truncated = false;
            let before = conn.connects;
            loop {
                if Instant::now() >= deadline {
                    truncated = next.load(Ordering::Relaxed) < requests.len();
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { break };
                let t = Instant::now();
                let r = conn.request(req).await;
                rec.record(t.elapsed());
                done += 1;
                match r {
                    Ok(resp) if resp.status == 200 => {}
                    Ok(resp) => errors.add(format!("HTTP {}: {}", resp.status, resp.error_text())),
                    Err(e) => errors.add(format!("connection: {e}")),
                }
            }
            (rec, errors, done, truncated, conn.connects - before)
        }));
    }
    let mut out = Burst {
        latency: Recorder::default(),
        errors: Errors::default(),
        done: 0,
        elapsed: Duration::ZERO,
        truncated: false,
        connects: 0,
    };
    for t in tasks {
        let (rec, errors, done, truncated, connects) = t.await.expect("burst task");
        out.latency.merge(&rec);
        out.errors.merge(&errors);
        out.done += done;
        out.truncated |= truncated;
        out.connects += connects;
    }
    out.elapsed = start.elapsed();
    out
}
