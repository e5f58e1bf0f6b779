//! The retalk relay: an untrusted mailbox server for end-to-end-encrypted
//! messages. It stores public keys and opaque ciphertext, checks that every
//! request is signed by the keys it claims, and forgets mail once delivered.
//!
//! Layout, following a request:
//!
//! * `server`: accepts connections (HTTP/1.1, timeouts, graceful stop);
//! * `io`: drops a connection whose peer stops reading;
//! * `http`: routes, body cap, error bodies, waiting reads;
//! * `verify`: parses and authenticates bodies on a thread pool;
//! * `storage`: the backend contract (a trait) every database keeps, with
//!   its SQLite and PostgreSQL implementations;
//! * `writer`: with SQLite, one thread runs authenticated requests in group
//!   commits;
//! * `store`: the SQLite schema (the reference's) and one function per
//!   tool;
//! * `mailboxes`: the SQLite writer's in-memory index of waiting mail (which
//!   messages, from whom, how many and how many bytes per mailbox), rebuilt
//!   from the file when another program writes it;
//! * `waiters`: per-mailbox wake-ups for `read_messages` with `wait`;
//! * `config` and [`cli`]: settings, from code or from flags and
//!   environment.
//!
//! Its API is [`Relay`], [`Config`], [`ServerError`], [`prepare_sqlite`]
//! and the command line ([`cli`]); everything else is private.
//!
//! ```no_run
//! # async fn demo() -> Result<(), retalk_server::ServerError> {
//! use retalk_server::{Config, Relay};
//! let relay = Relay::start(Config { port: 0, ..Default::default() }).await?;
//! println!("relay at {}", relay.url());
//! relay.shutdown().await;
//! # Ok(()) }
//! ```

mod admin;
mod admission;
pub mod cli;
mod config;
mod conns;
mod http;
mod io;
mod mailboxes;
mod metrics;
pub mod migrate;
mod nonces;
mod server;
mod sig;
mod storage;
mod store;
mod timer;
mod verify;
mod waiters;
mod writer;

/// Sets SQLite up for the relay; call it before anything in the process
/// opens a database (the `retalk-server` binary does, first thing).
///
/// It puts in the relay's page cache, SQLite's own with one needless walk
/// over every cached page per commit taken out (see
/// `storage/sqlite/page_cache.rs`). SQLite takes a page cache only before
/// it starts, so this returns false, changing nothing, if it has: the relay
/// then works the same at the old cost. [`Relay::start`] tries it too.
pub fn prepare_sqlite() -> bool {
    storage::sqlite::page_cache::install()
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{Config, Durability};
pub use http::ACCESS_LOG_TARGET;

use crate::waiters::{Shutdown, Waiters};

/// The relay's name and version, as served in `GET /info`.
pub const SERVER_NAME: &str = concat!("retalk-server ", env!("CARGO_PKG_VERSION"));

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, no permission, bad host).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be opened or brought up to date.
    #[error("cannot open database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database's write-ahead log could not be opened for syncing.
    #[error("cannot open the write-ahead log of database {path}: {source}")]
    Log {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The PostgreSQL database could not be reached or brought up to date.
    #[error("cannot open PostgreSQL database: {0}")]
    Postgres(#[from] storage::postgres::PgError),
    /// A setting is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A worker thread could not be started.
    #[error("cannot start worker threads: {0}")]
    Threads(std::io::Error),
}

/// Seconds since the epoch, plus the configured offset.
pub(crate) fn unix_now(offset_secs: i64) -> f64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    t + offset_secs as f64
}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    audiences: Vec<String>,
    db: PathBuf,
    shutdown: Arc<Shutdown>,
    waiters: Arc<Waiters>,
    metrics_addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    /// Binds, opens (creating or migrating) the database, starts the worker
    /// threads, and returns once connections are being accepted.
    pub async fn start(config: Config) -> Result<Relay, ServerError> {
        if config.max_body == 0 {
            return Err(ServerError::Config("max_body must be at least 1".into()));
        }
        if config.timeout.is_zero() {
            return Err(ServerError::Config("timeout must be positive".into()));
        }
        let bind_addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|source| ServerError::Bind {
                addr: bind_addr.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: bind_addr,
            source,
        })?;
        let metrics_listener = match config.metrics_addr {
            Some(maddr) => {
                Some(
                    metrics::bind(maddr)
                        .await
                        .map_err(|source| ServerError::Bind {
                            addr: maddr.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr().map_err(|source| ServerError::Bind {
                addr: format!("{:?}", config.metrics_addr),
                source,
            })?),
            None => None,
        };
        let audiences = if config.audiences.is_empty() {
            vec![config::default_audience(&config.host, addr.port())]
        } else {
            config.audiences.clone()
        };
        if audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(ServerError::Config("an audience is empty".into()));
        }

        let waiters = Arc::new(Waiters::default());
        let health = Arc::new(metrics::Health::default());
        let shutdown = Arc::new(Shutdown::default());
        let limits = writer::Limits {
            max_otks: config.max_otks_per_user,
            mailbox: store::MailboxCaps {
                messages: config.max_mailbox,
                per_sender: config.max_mailbox_per_sender,
                bytes: config.max_mailbox_bytes,
            },
            message_ttl_secs: config.message_ttl.as_secs_f64(),
            max_refused: config.max_refused,
            refused_ttl_secs: config.refused_ttl.as_secs_f64(),
            clock_offset_secs: config.clock_offset_secs,
        };
        let api_keys = Arc::new(admission::ApiKeys::default());
        let (storage, key_store) = match &config.postgres {
            Some(url) => {
                let pg = storage::postgres::open(
                    url,
                    limits,
                    Arc::clone(&waiters),
                    Arc::clone(&health),
                    Arc::clone(&api_keys),
                )
                .await?;
                let pool = pg.pool();
                (storage::Storage::new(pg), admin::KeyStore::Postgres(pool))
            }
            None => (
                open_sqlite(&config, limits, &waiters, &health, &api_keys).await?,
                admin::KeyStore::Sqlite(config.db.clone()),
            ),
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let rate = admission::RateLimits::new(config.rate_limit).map(Arc::new);
        let (verifier, verifier_threads) = verify::spawn(
            threads,
            verify::Verifier {
                audiences: audiences.clone().into(),
                clock_offset_secs: config.clock_offset_secs,
                rate: rate.clone(),
            },
            storage.clone(),
        )
        .map_err(ServerError::Threads)?;

        let info = retalk_proto::RelayInfo {
            max_group_size: config.max_group_size,
            max_wait: Some(retalk_proto::tools::read_messages::MAX_WAIT_SECS),
            server: Some(SERVER_NAME.to_owned()),
        };
        let app = Arc::new(http::App {
            verifier: verifier.clone(),
            writer: storage.clone(),
            waiters: Arc::clone(&waiters),
            shutdown: Arc::clone(&shutdown),
            info: Bytes::from(serde_json::to_vec(&info).unwrap_or_default()),
            max_body: config.max_body,
            body_timeout: config.timeout,
            log_requests: config.log_requests,
            rate,
            require_api_key: config.require_api_key,
            admin: Arc::new(admin::Admin {
                password: config
                    .admin_password
                    .as_deref()
                    .map(admission::AdminPassword::new),
                store: key_store,
                keys: Arc::clone(&api_keys),
            }),
            api_keys,
        });
        let workers = server::Workers {
            verifier,
            verifier_threads,
            storage,
        };
        if let Some(listener) = metrics_listener {
            metrics::serve(
                listener,
                Arc::clone(&waiters),
                Arc::clone(&health),
                config.postgres.is_none().then(|| config.db.clone()),
                Arc::clone(&shutdown),
            );
        }
        let task = tokio::spawn(server::run(
            listener,
            http::router(app),
            Arc::clone(&shutdown),
            config.timeout,
            conns::Book::new(
                config.max_connections.unwrap_or_else(conns::default_max),
                config.max_connections_per_ip,
            ),
            workers,
        ));
        Ok(Relay {
            addr,
            audiences,
            db: config.db,
            shutdown,
            waiters,
            metrics_addr,
            task: Some(task),
        })
    }

    /// The address the relay listens on (with the real port when 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where metrics, `/healthz` and `/readyz` are served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The URL clients use: the first audience.
    pub fn url(&self) -> String {
        self.audiences[0].clone()
    }

    /// Every accepted audience.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The database file.
    pub fn db_path(&self) -> &std::path::Path {
        &self.db
    }

    /// How many `read_messages` requests are waiting for mail right now.
    pub fn waiting(&self) -> usize {
        self.waiters.count()
    }

    /// Stops gracefully: no new connections, waiting readers answered with
    /// an empty list, in-flight requests finished, and everything already
    /// queued committed before the database is closed.
    pub async fn shutdown(mut self) {
        self.shutdown.fire();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Opens the SQLite file and starts the group-commit writer on it.
async fn open_sqlite(
    config: &Config,
    limits: writer::Limits,
    waiters: &Arc<Waiters>,
    health: &Arc<metrics::Health>,
    api_keys: &Arc<admission::ApiKeys>,
) -> Result<storage::Storage, ServerError> {
    let db = config.db.clone();
    let offset = config.clock_offset_secs;
    let keys = Arc::clone(api_keys);
    let (conn, nonces) = tokio::task::spawn_blocking(move || {
        let conn = crate::store::open(&db)?;
        let nonces = nonces::NonceMemory::load(&conn, unix_now(offset))?;
        keys.load(&conn)?;
        Ok::<_, rusqlite::Error>((conn, nonces))
    })
    .await
    .map_err(|e| ServerError::Config(format!("database open task failed: {e}")))?
    .map_err(|source| ServerError::Database {
        path: config.db.clone(),
        source,
    })?;
    let wal = match config.durability {
        Durability::Full => {
            Some(
                crate::store::wal_file(&conn).map_err(|source| ServerError::Log {
                    path: config.db.clone(),
                    source,
                })?,
            )
        }
        Durability::Process => None,
    };
    let (writer, writer_thread) = writer::spawn(
        conn,
        nonces,
        limits,
        Arc::clone(waiters),
        wal,
        Arc::clone(health),
    )
    .map_err(ServerError::Threads)?;
    Ok(storage::Storage::new(storage::sqlite::Sqlite::new(
        writer,
        writer_thread,
    )))
}

impl Drop for Relay {
    /// A relay dropped without [`Relay::shutdown`] still stops: the same
    /// sequence runs in the background for as long as the runtime lives.
    fn drop(&mut self) {
        self.shutdown.fire();
    }
}
