//! What a relay is told at start-up, and the defaults that let it start with
//! no setup at all.

use std::path::PathBuf;
use std::time::Duration;

/// Default TCP port, the same as the Python reference relay's.
pub const DEFAULT_PORT: u16 = 8766;
/// Default request body cap: 1 MiB, as the 0.3.x reference.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default bound on one user's stored (unclaimed) one-time keys. Clients keep
/// about 100 on the relay; 10,000 leaves room for any honest client while
/// stopping one identity from filling the disk with keys.
pub const DEFAULT_MAX_OTKS_PER_USER: u64 = 10_000;
/// Default advisory group size served at `GET /info` (0.3.x clients read it).
pub const DEFAULT_MAX_GROUP_SIZE: u64 = 100;
/// Default bound on refusals (`nack`) kept per recipient, as the reference.
pub const DEFAULT_MAX_REFUSED: u64 = 1000;
/// Default lifetime of a refusal: 7 days, as the reference.
pub const DEFAULT_REFUSED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default bound on undelivered messages per recipient.
pub const DEFAULT_MAX_MAILBOX: u64 = 10_000;
/// Default bound on undelivered messages one sender may have in one
/// recipient's mailbox: a tenth of the mailbox, so one sender cannot lock
/// everyone else out.
pub const DEFAULT_MAX_MAILBOX_PER_SENDER: u64 = 1_000;
/// Default bound on the bytes of undelivered bodies per recipient: 256 MiB.
pub const DEFAULT_MAX_MAILBOX_BYTES: u64 = 256 * 1024 * 1024;
/// Default lifetime of undelivered mail: 30 days.
pub const DEFAULT_MESSAGE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default bound on open connections from one client address: none,
/// because behind a proxy (the recommended set-up) every client shares the
/// proxy's address. Set it on a relay that faces clients directly.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 0;

/// Default time a client gets to send a request's headers (or, when idle
/// between requests, to start the next one) and its body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How hard a commit pushes data to disk before the relay answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every group commit is fsynced (the WAL, by the writer's syncer
    /// thread, while the next group runs) before any request in it is
    /// answered. A 200 survives a crash of the process and of the
    /// machine (power loss).
    #[default]
    Full,
    /// `synchronous=NORMAL` (WAL): commits reach the operating system before
    /// the answer but are fsynced only at checkpoints. A 200 survives a crash
    /// (or `kill -9`) of the relay process, not a power loss or kernel crash.
    Process,
}

/// Relay settings. `Config::default()` is a working local relay.
#[derive(Debug, Clone)]
pub struct Config {
    /// Interface to bind. `0.0.0.0` listens on every interface.
    pub host: String,
    /// Port to bind; 0 picks a free one (see [`crate::Relay::local_addr`]).
    pub port: u16,
    /// Public URLs clients address this relay by; request signatures must be
    /// bound to one of them. Empty means `http://HOST:PORT` (with `0.0.0.0`
    /// shown as `127.0.0.1` and port 0 replaced by the bound port).
    pub audiences: Vec<String>,
    /// The SQLite database file (created if missing).
    pub db: PathBuf,
    /// Largest accepted request body in bytes; larger ones get HTTP 413
    /// without being read.
    pub max_body: usize,
    /// Log one line per request (method, tool, status, duration; never ids,
    /// keys or bodies). Off by default: a relay should not build a metadata
    /// log nobody asked for.
    pub log_requests: bool,
    /// Most unclaimed one-time keys one user may keep on the relay; a
    /// publish that would exceed it is refused with HTTP 429.
    pub max_otks_per_user: u64,
    /// Most undelivered messages one recipient may have waiting; a send to a
    /// full mailbox is refused with HTTP 429 (never evicting mail). 0 means
    /// unlimited.
    pub max_mailbox: u64,
    /// Most undelivered messages one sender may have in one recipient's
    /// mailbox (429 past it). 0 means no per-sender bound.
    pub max_mailbox_per_sender: u64,
    /// Most bytes of undelivered bodies one recipient may have waiting (429
    /// past it). 0 means unlimited.
    pub max_mailbox_bytes: u64,
    /// Undelivered mail older than this is deleted; zero keeps it forever.
    pub message_ttl: Duration,
    /// Requests per minute one verified user may make (HTTP 429 with
    /// `Retry-After` past it); the same budget applies per client address
    /// to requests that fail verification. 0 turns both off.
    pub rate_limit: u32,
    /// Password of the `/admin` page and API (HTTP Basic); `None` disables
    /// them (404).
    pub admin_password: Option<String>,
    /// Every tool call must carry a valid API key (`Authorization: Bearer`
    /// or `X-Retalk-Key`), else 401.
    pub require_api_key: bool,
    /// Most open connections in all; `None` picks 80% of the file
    /// descriptor limit. Past it the oldest idle connection is closed to
    /// make room.
    pub max_connections: Option<usize>,
    /// Most open connections from one client address; the next is refused
    /// at once (closed). 0 means no per-address bound.
    pub max_connections_per_ip: usize,
    /// Where to serve Prometheus metrics, `/healthz` and `/readyz`; `None`
    /// serves no metrics listener.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Logs as JSON lines (read by the `retalk-server` binary, which sets up
    /// logging; the library logs through `tracing` either way).
    pub log_json: bool,
    /// Most refusals (`nack`) kept per recipient; the oldest are evicted.
    /// 0 means unlimited.
    pub max_refused: u64,
    /// How long a refusal blocks re-sends of its ciphertext; zero means
    /// forever.
    pub refused_ttl: Duration,
    /// Advisory largest group roster, served at `GET /info`.
    pub max_group_size: u64,
    /// Time a client gets to send a request's headers (also the longest an
    /// idle keep-alive connection stays open) and, separately, its body;
    /// also how long writing an answer may stall before the connection is
    /// dropped.
    pub timeout: Duration,
    /// How hard a commit pushes data to disk before the relay answers.
    pub durability: Durability,
    /// Seconds added to the system clock for timestamp checks and stored
    /// times. Always 0 in operation; tests set it to replay requests that
    /// were signed at a fixed time (the reference's test vectors).
    pub clock_offset_secs: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            audiences: Vec::new(),
            db: PathBuf::from("server.db"),
            max_body: DEFAULT_MAX_BODY,
            log_requests: false,
            max_otks_per_user: DEFAULT_MAX_OTKS_PER_USER,
            max_mailbox: DEFAULT_MAX_MAILBOX,
            max_mailbox_per_sender: DEFAULT_MAX_MAILBOX_PER_SENDER,
            max_mailbox_bytes: DEFAULT_MAX_MAILBOX_BYTES,
            message_ttl: DEFAULT_MESSAGE_TTL,
            rate_limit: 0,
            admin_password: None,
            require_api_key: false,
            max_connections: None,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            metrics_addr: None,
            log_json: false,
            max_refused: DEFAULT_MAX_REFUSED,
            refused_ttl: DEFAULT_REFUSED_TTL,
            max_group_size: DEFAULT_MAX_GROUP_SIZE,
            timeout: DEFAULT_TIMEOUT,
            durability: Durability::Full,
            clock_offset_secs: 0,
        }
    }
}

/// The audience a relay bound to `host:port` has when none is configured:
/// the URL a client on the same machine would use.
pub fn default_audience(host: &str, port: u16) -> String {
    let shown = match host {
        "0.0.0.0" | "" => "127.0.0.1".to_owned(),
        "::" | "[::]" => "[::1]".to_owned(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_owned(),
    };
    format!("http://{shown}:{port}")
}

/// Splits a comma-separated audience list, dropping blanks and surrounding
/// spaces (the 0.3.x reference reads `RETALK_SERVER_AUDIENCE` the same way).
pub fn split_audiences(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_audience_shows_a_reachable_host() {
        assert_eq!(default_audience("0.0.0.0", 8766), "http://127.0.0.1:8766");
        assert_eq!(default_audience("127.0.0.1", 1), "http://127.0.0.1:1");
        assert_eq!(default_audience("relay.local", 80), "http://relay.local:80");
        assert_eq!(default_audience("::", 9), "http://[::1]:9");
        assert_eq!(default_audience("::1", 9), "http://[::1]:9");
    }

    #[test]
    fn audience_lists() {
        assert_eq!(
            split_audiences(" https://a.example , https://b.example,,"),
            vec!["https://a.example", "https://b.example"]
        );
        assert!(split_audiences(" , ").is_empty());
    }
}
