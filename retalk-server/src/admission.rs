//! Who may use the relay and how fast: API keys (0.3.0's admission
//! control), per-user rate limits on the **verified** caller, and per-address
//! limits on requests that fail verification.
//!
//! 0.3.0 keys its limiter on the fingerprint a request *claims*, before any
//! check, so anyone can spend a victim's budget by naming it, and dodge the
//! limit by naming random ids. Here the user limit is applied after the
//! signature check, to the caller the signature proves; what fails
//! verification is counted per client address instead, and an address over
//! that budget is refused before its bodies are even parsed.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use retalk_proto::{UserId, WireError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How often (in checks) the limiters forget keys that are back to a full
/// budget, so their memory follows the active users, not all users ever.
const RETAIN_EVERY: u32 = 8192;

/// The text of a rate-limit refusal; the HTTP layer reads the seconds back
/// out of it for the `Retry-After` header.
pub fn rate_limited(retry_after: Duration) -> WireError {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    WireError::LimitExceeded(format!(
        "rate limit exceeded; slow down and retry after {} s",
        secs.max(1)
    ))
}

/// The `Retry-After` seconds of a refusal made by [`rate_limited`].
pub fn retry_after_of(text: &str) -> Option<u64> {
    text.strip_prefix("rate limit exceeded; slow down and retry after ")?
        .strip_suffix(" s")?
        .parse()
        .ok()
}

/// Per-minute budgets, per verified user and per address for failures.
pub struct RateLimits {
    users: DefaultKeyedRateLimiter<UserId>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses out of failure budget, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    checks: AtomicU32,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    /// `per_minute` requests a minute (a burst of that many, refilled
    /// evenly); `None` when 0 (off).
    pub fn new(per_minute: u32) -> Option<Self> {
        let n = NonZeroU32::new(per_minute)?;
        let quota = Quota::per_minute(n);
        Some(RateLimits {
            users: DefaultKeyedRateLimiter::keyed(quota),
            failures: DefaultKeyedRateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
            checks: AtomicU32::new(0),
            clock: DefaultClock::default(),
        })
    }

    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.users.retain_recent();
            self.failures.retain_recent();
            self.users.shrink_to_fit();
            self.failures.shrink_to_fit();
            let now = Instant::now();
            self.blocked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, until| *until > now);
        }
    }

    /// Spends one request of a verified caller's budget.
    pub fn check_user(&self, caller: &UserId) -> Result<(), WireError> {
        self.tick();
        self.users.check_key(caller).map_err(|not_until| {
            metrics::counter!("retalk_rate_limited_total", "scope" => "user").increment(1);
            rate_limited(not_until.wait_time_from(self.clock.now()))
        })
    }

    /// Whether `ip` may send a body to be verified now (it is not over its
    /// budget of failures); the wait otherwise.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), WireError> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        match blocked.get(&ip) {
            Some(until) if *until > Instant::now() => Err(rate_limited(
                until.saturating_duration_since(Instant::now()),
            )),
            Some(_) => {
                blocked.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a request from `ip` that failed verification.
    pub fn failed(&self, ip: IpAddr) {
        self.tick();
        if let Err(not_until) = self.failures.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            self.blocked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(ip, Instant::now() + wait);
        }
    }
}

/// The SHA-256 hex of an API key: what the `api_keys` table stores (as
/// 0.3.0, so keys minted by either relay work with both).
pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// The valid (not disabled) API keys, by hash, as loaded from the database.
#[derive(Default)]
pub struct ApiKeys {
    hashes: RwLock<HashSet<[u8; 32]>>,
}

impl ApiKeys {
    /// Replaces the set with the database's non-disabled keys.
    pub fn load(&self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare("SELECT key_hash FROM api_keys WHERE disabled=0")?;
        let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0))?;
        let hashes = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        self.replace(hashes.into_iter().flatten());
        Ok(())
    }

    /// Replaces the set with these SHA-256 hex hashes (malformed ones,
    /// which no key can match, are left out).
    pub fn replace(&self, hashes: impl IntoIterator<Item = String>) {
        let set = hashes
            .into_iter()
            .filter_map(|h| hex::decode(h).ok())
            .filter_map(|b| <[u8; 32]>::try_from(b).ok())
            .collect();
        *self.hashes.write().unwrap_or_else(PoisonError::into_inner) = set;
    }

    /// Whether `raw` is a valid key. The lookup is by the key's SHA-256, so
    /// its timing depends only on a digest of the guess, which tells an
    /// attacker nothing about any stored key.
    pub fn valid(&self, raw: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(raw.as_bytes()).into();
        self.hashes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&digest)
    }
}

/// The admin password, kept as a digest and compared in constant time.
pub struct AdminPassword([u8; 32]);

impl AdminPassword {
    /// From the configured password.
    pub fn new(password: &str) -> Self {
        AdminPassword(Sha256::digest(password.as_bytes()).into())
    }

    /// Whether `candidate` is the password (same time whatever it is).
    pub fn matches(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_round_trips() {
        let e = rate_limited(Duration::from_millis(2500));
        let WireError::LimitExceeded(text) = e else {
            panic!()
        };
        assert_eq!(retry_after_of(&text), Some(3));
        assert_eq!(retry_after_of("mailbox full"), None);
    }

    #[test]
    fn failures_block_an_address_and_only_that_one() {
        let limits = RateLimits::new(3).unwrap();
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        let good: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check_address(bad).is_ok());
            limits.failed(bad);
        }
        limits.failed(bad);
        assert!(limits.check_address(bad).is_err());
        assert!(limits.check_address(good).is_ok());
    }

    #[test]
    fn the_admin_password_matches_only_itself() {
        let pw = AdminPassword::new("s3cret");
        assert!(pw.matches("s3cret"));
        assert!(!pw.matches("s3cre"));
        assert!(!pw.matches(""));
    }
}
