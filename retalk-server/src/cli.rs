//! Command-line flags and environment variables of the `retalk-server`
//! binary. A flag beats the environment; of the environment names, the
//! 0.3.x ones (`RETALK_SERVER_*`) beat the 0.0.1 ones (`SERVER_*`), so a
//! relay started by either generation's scripts keeps its settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{self, Config, Durability};

const ABOUT: &str =
    "The retalk relay: an untrusted mailbox server for end-to-end-encrypted messages";

const LONG_ABOUT: &str = "\
The retalk relay: an untrusted mailbox server for end-to-end-encrypted messages
between agents, services and people.

What it stores: each user's public keys (identity, signing, one-time and
fallback keys), undelivered ciphertext, the hashes of ciphertext a user
refused (nack), and recently used request nonces. What
it sees: who sends to whom, when, and how large each message is. What it never
sees: plaintext or private keys. A delivered message is deleted, content and
metadata. No request is logged unless you ask for it (--log-requests).

It needs no setup: run `retalk-server` and it listens on 127.0.0.1:8766 with
server.db in the working directory.";

const AFTER_HELP: &str = "\
Examples:
  retalk-server
      local relay on http://127.0.0.1:8766, database ./server.db
  retalk-server --host 0.0.0.0 --port 9000 --db /var/lib/retalk/server.db
      every interface; clients use http://THIS-HOST:9000, so set --audience
  retalk-server --audience https://relay.example.com
      behind a TLS proxy that forwards to 127.0.0.1:8766
  retalk-server --audience https://new.example.com,https://old.example.com
      accept both URLs while clients move to the new one

--host/--port are where this process listens; --audience is the URL clients
use. Request signatures are bound to it, so it must equal each client's relay
URL exactly (scheme, host, port; no trailing slash unless clients use one).
Locally they coincide; behind a proxy --host/--port stay local and --audience
is the public https:// address.

Environment (a flag beats its variable; RETALK_SERVER_* beats SERVER_*):
  RETALK_SERVER_HOST, SERVER_HOST          --host
  RETALK_SERVER_PORT, SERVER_PORT          --port
  RETALK_SERVER_AUDIENCE, SERVER_AUDIENCE  --audience
  RETALK_SERVER_DB, SERVER_DB              --db
  RETALK_SERVER_MAX_BODY                   --max-body
  RETALK_SERVER_MAX_OTKS                   --max-otks
  RETALK_SERVER_MAX_MAILBOX                --max-mailbox
  RETALK_SERVER_MAX_MAILBOX_PER_SENDER     --max-mailbox-per-sender
  RETALK_SERVER_MAX_MAILBOX_BYTES          --max-mailbox-bytes
  RETALK_SERVER_MESSAGE_TTL                --message-ttl
  RETALK_SERVER_RATE_LIMIT                 --rate-limit
  RETALK_SERVER_ADMIN_PASSWORD             --admin-password
  RETALK_SERVER_REQUIRE_API_KEY (1/true)   --require-api-key
  RETALK_SERVER_MAX_CONNECTIONS            --max-connections
  RETALK_SERVER_MAX_CONNECTIONS_PER_IP     --max-connections-per-ip
  RETALK_SERVER_METRICS_ADDR               --metrics-addr
  RETALK_SERVER_LOG_FORMAT                 --log-format
  RETALK_SERVER_MAX_REFUSED                --max-refused
  RETALK_SERVER_REFUSED_TTL                --refused-ttl
  RETALK_SERVER_MAX_GROUP_SIZE             --max-group-size
  RETALK_SERVER_TIMEOUT                    --timeout
  RETALK_SERVER_DURABILITY                 --durability
  RETALK_SERVER_LOG_REQUESTS (1/true)      --log-requests
  RUST_LOG                                 log filter, e.g. info or debug

Stop it with Ctrl-C or SIGTERM: waiting readers are answered, in-flight
requests finish, and the database is closed cleanly. Back up a running relay
with: sqlite3 server.db \".backup backup.db\"  (see docs/server.md).";

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// one human-readable line per event
    #[default]
    Text,
    /// one JSON object per line (for log collectors)
    Json,
}

/// `--durability` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// fsync every group commit: an answered request survives power loss
    Full,
    /// no fsync per commit: survives a crash of the relay, not of the machine
    Process,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Process => Durability::Process,
        }
    }
}

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "retalk-server",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = AFTER_HELP,
    after_help = "Run with --help for examples, environment variables and what the relay stores."
)]
pub struct Args {
    /// Interface to listen on: 127.0.0.1 for this machine only, 0.0.0.0 for
    /// every interface [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// TCP port to listen on; 0 picks a free one [default: 8766]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Public URL(s) clients address this relay by, comma-separated;
    /// signatures must be bound to one of them [default: http://HOST:PORT,
    /// with 0.0.0.0 shown as 127.0.0.1]
    #[arg(long, value_name = "URL[,URL...]")]
    pub audience: Option<String>,
    /// SQLite database file, created if missing; a reference relay's file
    /// opens as is [default: server.db]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Largest request body in bytes; larger ones get HTTP 413 unread
    /// [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub max_body: Option<usize>,
    /// Most unclaimed one-time keys one user may keep here; a publish past
    /// it gets HTTP 429 [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_otks: Option<u64>,
    /// Most undelivered messages per recipient; a send to a full mailbox
    /// gets HTTP 429 and nothing is evicted; 0 = unlimited [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_mailbox: Option<u64>,
    /// Most undelivered messages one sender may have in one recipient's
    /// mailbox, so one sender cannot lock others out; 0 = no per-sender
    /// bound [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_mailbox_per_sender: Option<u64>,
    /// Most bytes of undelivered message bodies per recipient; 0 = unlimited
    /// [default: 268435456, 256 MiB]
    #[arg(long, value_name = "BYTES")]
    pub max_mailbox_bytes: Option<u64>,
    /// Seconds undelivered mail is kept before it is deleted; 0 = keep
    /// forever [default: 2592000, 30 days]
    #[arg(long, value_name = "SECONDS")]
    pub message_ttl: Option<u64>,
    /// Requests per minute one verified user may make, and one client
    /// address may make with requests that fail verification; past it HTTP
    /// 429 with Retry-After; 0 = off [default: 0]
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Password of the /admin page and API (HTTP Basic) that manage API
    /// keys; unset, /admin answers 404. Prefer the environment variable: a
    /// flag shows in the process list
    #[arg(long, value_name = "PASSWORD")]
    pub admin_password: Option<String>,
    /// Every tool call must carry a valid API key (Authorization: Bearer KEY
    /// or X-Retalk-Key: KEY), else HTTP 401; keys are made at /admin
    #[arg(long)]
    pub require_api_key: bool,
    /// Most open connections in all; past it the oldest idle connection is
    /// closed to make room [default: 80% of the open-file limit]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most open connections from one client address; more are closed at
    /// once; 0 = no bound (behind a proxy every client shares its address)
    /// [default: 0]
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Serve Prometheus metrics (GET /metrics), /healthz and /readyz on this
    /// separate address, e.g. 127.0.0.1:9766 [default: off]
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Log format on stderr [default: text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Most refused-message hashes (nack) kept per recipient, oldest
    /// evicted first; 0 = unlimited [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_refused: Option<u64>,
    /// Seconds a refusal (nack) blocks re-sends; 0 = forever [default:
    /// 604800, 7 days]
    #[arg(long, value_name = "SECONDS")]
    pub refused_ttl: Option<u64>,
    /// Advisory largest group roster, served at GET /info for clients to
    /// enforce [default: 100]
    #[arg(long, value_name = "N")]
    pub max_group_size: Option<u64>,
    /// Seconds a client gets to send a request's headers and, separately,
    /// its body; also how long an idle connection is kept and how long an
    /// answer waits for a client that stopped reading [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// How hard each commit goes to disk before the relay answers [default:
    /// full]
    #[arg(long, value_enum, value_name = "MODE")]
    pub durability: Option<DurabilityArg>,
    /// Log one line per request (method, status, duration; never ids, keys
    /// or bodies). Off by default so the relay keeps no metadata log
    #[arg(long)]
    pub log_requests: bool,
}

fn lookup(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        env(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| ((*n).to_owned(), v))
    })
}

fn parse_env<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    names: &[&str],
    what: &str,
) -> Result<Option<T>, String> {
    match lookup(env, names) {
        None => Ok(None),
        Some((name, v)) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("environment variable {name}={v:?} is not a valid {what}")),
    }
}

fn seconds(v: f64, what: &str) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v <= 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("{what} must be a positive number of seconds"))
    }
}

impl Args {
    /// Combines the flags with the environment (read through `env`) and the
    /// defaults.
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let d = Config::default();
        let host = match self.host {
            Some(h) => h,
            None => lookup(env, &["RETALK_SERVER_HOST", "SERVER_HOST"])
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or(d.host),
        };
        let port = match self.port {
            Some(p) => p,
            None => {
                parse_env(env, &["RETALK_SERVER_PORT", "SERVER_PORT"], "port")?.unwrap_or(d.port)
            }
        };
        let audiences = match self.audience {
            Some(a) => {
                let list = config::split_audiences(&a);
                if list.is_empty() {
                    return Err("--audience is empty".into());
                }
                list
            }
            None => lookup(env, &["RETALK_SERVER_AUDIENCE", "SERVER_AUDIENCE"])
                .map(|(_, v)| config::split_audiences(&v))
                .unwrap_or_default(),
        };
        let db = match self.db {
            Some(p) => p,
            None => lookup(env, &["RETALK_SERVER_DB", "SERVER_DB"])
                .map(|(_, v)| PathBuf::from(v))
                .unwrap_or(d.db),
        };
        let max_body = match self.max_body {
            Some(n) => n,
            None => {
                parse_env(env, &["RETALK_SERVER_MAX_BODY"], "size in bytes")?.unwrap_or(d.max_body)
            }
        };
        if max_body == 0 {
            return Err("--max-body must be at least 1".into());
        }
        let max_otks_per_user = match self.max_otks {
            Some(n) => n,
            None => {
                parse_env(env, &["RETALK_SERVER_MAX_OTKS"], "count")?.unwrap_or(d.max_otks_per_user)
            }
        };
        let max_mailbox = match self.max_mailbox {
            Some(n) => n,
            None => {
                parse_env(env, &["RETALK_SERVER_MAX_MAILBOX"], "count")?.unwrap_or(d.max_mailbox)
            }
        };
        let max_refused = match self.max_refused {
            Some(n) => n,
            None => {
                parse_env(env, &["RETALK_SERVER_MAX_REFUSED"], "count")?.unwrap_or(d.max_refused)
            }
        };
        let refused_ttl = match self.refused_ttl {
            Some(s) => Duration::from_secs(s),
            None => parse_env::<u64>(env, &["RETALK_SERVER_REFUSED_TTL"], "number of seconds")?
                .map(Duration::from_secs)
                .unwrap_or(d.refused_ttl),
        };
        let max_group_size = match self.max_group_size {
            Some(n) => n,
            None => parse_env(env, &["RETALK_SERVER_MAX_GROUP_SIZE"], "count")?
                .unwrap_or(d.max_group_size),
        };
        let timeout = match self.timeout {
            Some(s) => seconds(s, "--timeout")?,
            None => match parse_env::<f64>(env, &["RETALK_SERVER_TIMEOUT"], "number of seconds")? {
                Some(s) => seconds(s, "RETALK_SERVER_TIMEOUT")?,
                None => d.timeout,
            },
        };
        let durability = match self.durability {
            Some(m) => m.into(),
            None => match lookup(env, &["RETALK_SERVER_DURABILITY"]) {
                None => d.durability,
                Some((_, v)) => DurabilityArg::from_str(v.trim(), true)
                    .map_err(|_| {
                        format!("RETALK_SERVER_DURABILITY={v:?} must be \"full\" or \"process\"")
                    })?
                    .into(),
            },
        };
        let truthy = |name: &str| {
            lookup(env, &[name]).is_some_and(|(_, v)| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
        };
        let log_requests = self.log_requests || truthy("RETALK_SERVER_LOG_REQUESTS");
        let require_api_key = self.require_api_key || truthy("RETALK_SERVER_REQUIRE_API_KEY");
        let max_mailbox_per_sender = match self.max_mailbox_per_sender {
            Some(n) => n,
            None => parse_env(env, &["RETALK_SERVER_MAX_MAILBOX_PER_SENDER"], "count")?
                .unwrap_or(d.max_mailbox_per_sender),
        };
        let max_mailbox_bytes = match self.max_mailbox_bytes {
            Some(n) => n,
            None => parse_env(env, &["RETALK_SERVER_MAX_MAILBOX_BYTES"], "size in bytes")?
                .unwrap_or(d.max_mailbox_bytes),
        };
        let message_ttl = match self.message_ttl {
            Some(s) => Duration::from_secs(s),
            None => parse_env::<u64>(env, &["RETALK_SERVER_MESSAGE_TTL"], "number of seconds")?
                .map(Duration::from_secs)
                .unwrap_or(d.message_ttl),
        };
        let rate_limit = match self.rate_limit {
            Some(n) => n,
            None => parse_env(env, &["RETALK_SERVER_RATE_LIMIT"], "count")?.unwrap_or(d.rate_limit),
        };
        let admin_password = match self.admin_password {
            Some(p) => Some(p),
            None => lookup(env, &["RETALK_SERVER_ADMIN_PASSWORD"]).map(|(_, v)| v),
        }
        .filter(|p| !p.is_empty());
        let max_connections = match self.max_connections {
            Some(n) => Some(n),
            None => parse_env(env, &["RETALK_SERVER_MAX_CONNECTIONS"], "count")?,
        };
        if max_connections == Some(0) {
            return Err("--max-connections must be at least 1".into());
        }
        let max_connections_per_ip = match self.max_connections_per_ip {
            Some(n) => n,
            None => parse_env(env, &["RETALK_SERVER_MAX_CONNECTIONS_PER_IP"], "count")?
                .unwrap_or(d.max_connections_per_ip),
        };
        let metrics_addr = match self.metrics_addr {
            Some(a) => Some(a),
            None => parse_env(env, &["RETALK_SERVER_METRICS_ADDR"], "HOST:PORT address")?,
        };
        let log_format = match self.log_format {
            Some(f) => f,
            None => match lookup(env, &["RETALK_SERVER_LOG_FORMAT"]) {
                None => LogFormat::Text,
                Some((_, v)) => LogFormat::from_str(v.trim(), true).map_err(|_| {
                    format!("RETALK_SERVER_LOG_FORMAT={v:?} must be \"text\" or \"json\"")
                })?,
            },
        };
        Ok(Config {
            host,
            port,
            audiences,
            db,
            max_body,
            log_requests,
            max_otks_per_user,
            max_mailbox,
            max_mailbox_per_sender,
            max_mailbox_bytes,
            message_ttl,
            rate_limit,
            admin_password,
            require_api_key,
            max_connections,
            max_connections_per_ip,
            metrics_addr,
            log_json: log_format == LogFormat::Json,
            max_refused,
            refused_ttl,
            max_group_size,
            timeout,
            durability,
            clock_offset_secs: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(argv: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut full = vec!["retalk-server"];
        full.extend_from_slice(argv);
        Args::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .resolve(&|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_setup() {
        let c = resolve(&[], &[]).unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 8766);
        assert!(c.audiences.is_empty());
        assert_eq!(c.db, PathBuf::from("server.db"));
        assert_eq!(c.max_body, 1024 * 1024);
        assert!(!c.log_requests);
        assert_eq!(c.durability, Durability::Full);
    }

    #[test]
    fn flag_beats_new_env_beats_old_env() {
        let env = [
            ("SERVER_PORT", "1111"),
            ("RETALK_SERVER_PORT", "2222"),
            ("SERVER_HOST", "10.0.0.1"),
            ("SERVER_DB", "old.db"),
            ("RETALK_SERVER_DB", "new.db"),
            ("SERVER_AUDIENCE", "https://old.example"),
        ];
        let c = resolve(&[], &env).unwrap();
        assert_eq!(c.port, 2222);
        assert_eq!(c.host, "10.0.0.1");
        assert_eq!(c.db, PathBuf::from("new.db"));
        assert_eq!(c.audiences, vec!["https://old.example"]);
        let c = resolve(
            &[
                "--port",
                "3333",
                "--db",
                "flag.db",
                "--audience",
                "https://a,https://b",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(c.port, 3333);
        assert_eq!(c.db, PathBuf::from("flag.db"));
        assert_eq!(c.audiences, vec!["https://a", "https://b"]);
    }

    #[test]
    fn every_setting_reads_its_variable() {
        let c = resolve(
            &[],
            &[
                ("RETALK_SERVER_MAX_BODY", "2048"),
                ("RETALK_SERVER_MAX_OTKS", "7"),
                ("RETALK_SERVER_MAX_MAILBOX", "8"),
                ("RETALK_SERVER_MAX_REFUSED", "9"),
                ("RETALK_SERVER_REFUSED_TTL", "10"),
                ("RETALK_SERVER_MAX_GROUP_SIZE", "11"),
                ("RETALK_SERVER_TIMEOUT", "2.5"),
                ("RETALK_SERVER_DURABILITY", "process"),
                ("RETALK_SERVER_LOG_REQUESTS", "true"),
                ("RETALK_SERVER_MAX_MAILBOX_PER_SENDER", "12"),
                ("RETALK_SERVER_MAX_MAILBOX_BYTES", "13"),
                ("RETALK_SERVER_MESSAGE_TTL", "14"),
                ("RETALK_SERVER_RATE_LIMIT", "15"),
                ("RETALK_SERVER_ADMIN_PASSWORD", "pw"),
                ("RETALK_SERVER_REQUIRE_API_KEY", "yes"),
                ("RETALK_SERVER_MAX_CONNECTIONS", "16"),
                ("RETALK_SERVER_MAX_CONNECTIONS_PER_IP", "17"),
                ("RETALK_SERVER_METRICS_ADDR", "127.0.0.1:9766"),
                ("RETALK_SERVER_LOG_FORMAT", "json"),
            ],
        )
        .unwrap();
        assert_eq!(c.max_body, 2048);
        assert_eq!(c.max_otks_per_user, 7);
        assert_eq!(c.max_mailbox, 8);
        assert_eq!(c.max_refused, 9);
        assert_eq!(c.refused_ttl, Duration::from_secs(10));
        assert_eq!(c.max_group_size, 11);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.durability, Durability::Process);
        assert!(c.log_requests);
        assert_eq!(c.max_mailbox_per_sender, 12);
        assert_eq!(c.max_mailbox_bytes, 13);
        assert_eq!(c.message_ttl, Duration::from_secs(14));
        assert_eq!(c.rate_limit, 15);
        assert_eq!(c.admin_password.as_deref(), Some("pw"));
        assert!(c.require_api_key);
        assert_eq!(c.max_connections, Some(16));
        assert_eq!(c.max_connections_per_ip, 17);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9766".parse().unwrap()));
        assert!(c.log_json);
    }

    #[test]
    fn bad_values_are_refused_with_the_name() {
        let e = resolve(&[], &[("RETALK_SERVER_PORT", "eighty")]).unwrap_err();
        assert!(e.contains("RETALK_SERVER_PORT"), "{e}");
        let e = resolve(&["--timeout", "0"], &[]).unwrap_err();
        assert!(e.contains("--timeout"), "{e}");
        let e = resolve(&["--max-body", "0"], &[]).unwrap_err();
        assert!(e.contains("--max-body"), "{e}");
        assert!(resolve(&["--port", "70000"], &[]).is_err());
        let e = resolve(&[], &[("RETALK_SERVER_DURABILITY", "maybe")]).unwrap_err();
        assert!(e.contains("RETALK_SERVER_DURABILITY"), "{e}");
    }

    #[test]
    fn help_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
