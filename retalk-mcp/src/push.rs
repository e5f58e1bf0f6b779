//! Push without a tool call: while the server runs, one task keeps a read
//! waiting on the relay and announces new mail to the client.
//!
//! * The waiting read only peeks ([`retalk::User::wait_for_mail`]): it takes
//!   nothing, so stopping the server at any moment loses nothing.
//! * When the relay says mail is there, the task fetches and decrypts it
//!   into the identity's sealed store, *held* (`hold`): every message stays
//!   there, unread, until a `receive` or `wait` hands it to the agent. The
//!   relay's mailbox is then empty again (acknowledgements and re-sent
//!   copies are consumed), so the next waiting read really waits.
//! * Each message is announced once: `notifications/resources/updated` for
//!   `retalk://inbox` (to clients that subscribed, by `resources/subscribe`
//!   or `subscriptions/listen`) and a `notifications/message` log line
//!   (clients of the initialize handshake, at level info or lower). The
//!   announcement names the senders (and the room of a room post) and
//!   counts; it never carries text.
//! * Key upkeep (one-time keys, fallback rotation, re-sending
//!   unacknowledged messages) runs at start and every minute, as in
//!   `receive --follow`.
//! * A relay that fails is retried with a backoff up to 15 s; one warning
//!   on stderr when the trouble starts.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use retalk::{ClientError, MaintainOptions, ReceiveOptions};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::server::Shared;
use crate::tools::ProblemOut;

/// How long one waiting read is held.
const WATCH: Duration = Duration::from_secs(25);
/// Pause between polls of a relay that cannot hold a read.
const POLL: Duration = Duration::from_secs(2);
/// How often key upkeep runs.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// Remembers the most recent announced ids.
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    const CAP: usize = 4096;

    fn first_time(&mut self, key: String) -> bool {
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() == Self::CAP {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(key.clone());
        self.set.insert(key);
        true
    }
}

/// Runs until `stop`; a fetch under way is finished first.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut seen = Seen {
        order: VecDeque::new(),
        set: HashSet::new(),
    };
    let mut backoff: Option<Duration> = None;
    let mut next_maintain = Instant::now();
    let mut first = true;
    let mut supports_wait: Option<bool> = None;
    while !stop.is_cancelled() {
        match round(
            &shared,
            &mut seen,
            &mut next_maintain,
            &mut first,
            &mut supports_wait,
            &stop,
        )
        .await
        {
            Ok(()) => {
                if backoff.take().is_some() {
                    tracing::info!("the relay answers again; listening");
                }
            }
            Err(e) => {
                let delay = match backoff {
                    None => {
                        tracing::warn!(error = %e, "cannot watch the mailbox; retrying with backoff");
                        BACKOFF_START
                    }
                    Some(d) => (d * 2).min(BACKOFF_MAX),
                };
                backoff = Some(delay);
                // After trouble, check again whether the relay can wait and
                // still knows our keys.
                supports_wait = None;
                first = true;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

async fn round(
    shared: &Shared,
    seen: &mut Seen,
    next_maintain: &mut Instant,
    first: &mut bool,
    supports_wait: &mut Option<bool>,
    stop: &CancellationToken,
) -> Result<(), ClientError> {
    let user = &shared.user;
    if *first {
        user.ensure_published().await?;
        *first = false;
    }
    if Instant::now() >= *next_maintain {
        user.maintain(MaintainOptions::default()).await?;
        *next_maintain = Instant::now() + MAINTAIN_EVERY;
    }
    let can_wait = match *supports_wait {
        Some(s) => s,
        None => *supports_wait.insert(user.relay_supports_wait().await?),
    };
    let inbox = user
        .receive_with(&ReceiveOptions {
            wait: None,
            from: None,
            peers_only: shared.options.peers_only,
            hold: true,
        })
        .await?;
    let fresh: Vec<_> = inbox
        .messages
        .iter()
        .filter(|m| seen.first_time(format!("{}/{}", m.from, m.id)))
        .collect();
    let fresh_count = fresh.len();
    if !fresh.is_empty() {
        shared.delivered.send_modify(|n| *n += 1);
        let senders = fresh
            .iter()
            .map(|m| {
                let name = user
                    .contacts()
                    .get(m.from.as_str())
                    .ok()
                    .flatten()
                    .map(|c| c.name);
                (
                    m.from.to_string(),
                    name,
                    m.group.as_ref().map(|g| g.name.clone()),
                )
            })
            .collect::<Vec<_>>();
        shared.announcer.mail(fresh.len(), &senders).await;
    }
    if !inbox.problems.is_empty() {
        let problems: Vec<ProblemOut> = inbox
            .problems
            .into_iter()
            .map(|p| ProblemOut {
                from: p.from.to_string(),
                reason: crate::error::one_line(&p.reason),
            })
            .collect();
        for p in &problems {
            tracing::warn!(from = %p.from, reason = %p.reason, "could not read a message");
        }
        shared.keep_problems(problems);
        shared.delivered.send_modify(|n| *n += 1);
        shared.announcer.problems().await;
    }
    let left = next_maintain.saturating_duration_since(Instant::now());
    let started = Instant::now();
    let r = tokio::select! {
        r = async {
            if can_wait {
                user.wait_for_mail(WATCH.min(left.max(Duration::from_secs(1))), None).await.map(|_| ())
            } else {
                tokio::time::sleep(POLL).await;
                Ok(())
            }
        } => r,
        _ = stop.cancelled() => Ok(()),
    };
    // A relay that keeps answering "mail!" with nothing readable for us
    // must not make this loop spin.
    if fresh_count == 0 && started.elapsed() < Duration::from_millis(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r
}
