//! Prometheus metrics, `/healthz` and `/readyz`, on a listener of their own
//! (`--metrics-addr`), so that scraping needs no route on the public port
//! and the public port shows nothing about the relay's traffic.
//!
//! The counters are recorded through the `metrics` facade everywhere in the
//! relay; without `--metrics-addr` no recorder is installed and each
//! recording is a no-op. The recorder is process-wide: several relays in
//! one process (tests) share it.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `retalk_requests_total` | counter | `tool`, `status` (HTTP status of the answer) |
//! | `retalk_verification_failures_total` | counter | `reason` |
//! | `retalk_rate_limited_total` | counter | `scope` (`user` or `address`) |
//! | `retalk_api_key_refusals_total` | counter | |
//! | `retalk_group_commit_size` | histogram | requests per group commit |
//! | `retalk_verify_batch_size` | histogram | request bodies per signature batch |
//! | `retalk_fsync_seconds` | histogram | time of each WAL fsync |
//! | `retalk_storage_errors_total` | counter | `stage` (`commit` or `sync`) |
//! | `retalk_waiting_readers` | gauge | |
//! | `retalk_connections_open` | gauge | |
//! | `retalk_connections_shed_total` | counter | `why` (`per_address` or `idle_for_room`) |
//! | `retalk_mailbox_messages` | gauge | undelivered messages, all mailboxes |
//! | `retalk_mailbox_bytes` | gauge | bytes of undelivered bodies |
//! | `retalk_expired_messages_total` | counter | deleted by `--message-ttl` |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::waiters::{Shutdown, Waiters};

/// A status code as a metrics label without allocating.
pub fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        414 => "414",
        429 => "429",
        431 => "431",
        503 => "503",
        _ => "other",
    }
}

/// What the storage tells the metrics listener: whether the last storage
/// work succeeded (commits and syncs set it), and how much mail waits (the
/// SQLite writer sets it, from its index, after each commit).
#[derive(Debug)]
pub struct Health {
    storage_ok: AtomicBool,
    /// Whether `mail_messages` and `mail_bytes` were ever set.
    mail_known: AtomicBool,
    mail_messages: AtomicU64,
    mail_bytes: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            storage_ok: AtomicBool::new(true),
            mail_known: AtomicBool::new(false),
            mail_messages: AtomicU64::new(0),
            mail_bytes: AtomicU64::new(0),
        }
    }
}

impl Health {
    /// Records the outcome of a commit or sync.
    pub fn storage(&self, ok: bool) {
        self.storage_ok.store(ok, Ordering::Relaxed);
    }

    fn storage_ok(&self) -> bool {
        self.storage_ok.load(Ordering::Relaxed)
    }

    /// Records the mail waiting in all mailboxes, as of the last commit.
    pub fn mail(&self, waiting: crate::mailboxes::Totals) {
        self.mail_messages
            .store(waiting.messages, Ordering::Relaxed);
        self.mail_bytes.store(waiting.bytes, Ordering::Relaxed);
        self.mail_known.store(true, Ordering::Release);
    }

    /// The mail waiting (messages, bytes), if the storage reports it.
    fn waiting(&self) -> Option<(u64, u64)> {
        self.mail_known.load(Ordering::Acquire).then(|| {
            (
                self.mail_messages.load(Ordering::Relaxed),
                self.mail_bytes.load(Ordering::Relaxed),
            )
        })
    }
}

/// The process's recorder, installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 2.0, 8.0,
                    32.0, 128.0, 512.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

struct Ctx {
    handle: &'static PrometheusHandle,
    waiters: Arc<Waiters>,
    health: Arc<Health>,
    /// The SQLite file, for the readiness probe; `None` with PostgreSQL
    /// (readiness from the last request's outcome; no mailbox gauges).
    db: Option<PathBuf>,
}

/// Installs the recorder (once per process) and binds the listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if handle().is_none() {
        return Err(std::io::Error::other(
            "another metrics recorder is already installed in this process",
        ));
    }
    TcpListener::bind(addr).await
}

/// Serves the metrics listener until `shutdown` fires.
pub fn serve(
    listener: TcpListener,
    waiters: Arc<Waiters>,
    health: Arc<Health>,
    db: Option<PathBuf>,
    shutdown: Arc<Shutdown>,
) {
    let Some(handle) = handle() else {
        return;
    };
    let ctx = Arc::new(Ctx {
        handle,
        waiters,
        health,
        db,
    });
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { text(StatusCode::OK, "ok\n") }))
        .route("/readyz", get(ready))
        .with_state(ctx);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
    });
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn render(State(ctx): State<Arc<Ctx>>) -> Response {
    metrics::gauge!("retalk_waiting_readers").set(ctx.waiters.count() as f64);
    // As of the writer's last commit (kept in its memory; no query).
    if let Some((messages, bytes)) = ctx.health.waiting() {
        metrics::gauge!("retalk_mailbox_messages").set(messages as f64);
        metrics::gauge!("retalk_mailbox_bytes").set(bytes as f64);
    }
    let mut r = Response::new(ctx.handle.render().into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Ready when the last commit and sync worked and the database accepts a
/// write transaction (taken and rolled back at once).
async fn ready(State(ctx): State<Arc<Ctx>>) -> Response {
    if !ctx.health.storage_ok() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage failing\n");
    }
    let Some(db) = ctx.db.clone() else {
        return text(StatusCode::OK, "ready\n");
    };
    let probe = tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
    })
    .await;
    match probe {
        Ok(Ok(())) => text(StatusCode::OK, "ready\n"),
        _ => text(StatusCode::SERVICE_UNAVAILABLE, "storage not writable\n"),
    }
}
