//! Accepting connections, serving HTTP/1.1 on each, and the orderly stop.
//!
//! The accept loop is hand-written (rather than `axum::serve`) for two
//! settings axum does not expose: the header read timeout, which drops slow
//! and idle connections, and a graceful stop that lets in-flight requests
//! finish before the writer commits its last group.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::Service;

use std::sync::atomic::Ordering;

use crate::conns::{Admit, Book, ConnState};
use crate::io::WriteTimeout;
use crate::storage::Storage;
use crate::timer::ConnTimer;
use crate::verify::VerifierHandle;
use crate::waiters::Shutdown;

/// How long a stopping relay waits for in-flight requests (waiters are
/// released at once, so this only covers slow clients and big answers).
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Largest request head (request line and headers) accepted. Above the
/// longest URI hyper takes (64 KiB, refused 414 beyond), far above any head
/// a client of ours sends.
const MAX_HEAD_BYTES: usize = 128 * 1024;

/// The worker threads behind the HTTP layer, stopped in order at the end.
pub struct Workers {
    /// Verifier pool.
    pub verifier: VerifierHandle,
    /// Verifier threads.
    pub verifier_threads: Vec<JoinHandle<()>>,
    /// The storage backend (for SQLite, the writer thread).
    pub storage: Storage,
}

/// Serves connections until `shutdown` fires, then drains them and stops
/// the workers: verifiers first (their queued requests reach the writer),
/// then the writer (which commits everything queued before it exits).
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: Arc<Shutdown>,
    header_timeout: Duration,
    book: Book,
    workers: Workers,
) {
    let mut book = book;
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match book.admit(peer.ip()) {
                    Admit::Serve(id, state) => {
                        conns.spawn(serve_connection(
                            stream,
                            peer,
                            router.clone(),
                            Arc::clone(&shutdown),
                            header_timeout,
                            id,
                            state,
                        ));
                    }
                    // Closed at once (dropping the stream), costing no
                    // more than the accept.
                    Admit::PerAddress => {
                        metrics::counter!("retalk_connections_shed_total", "why" => "per_address")
                            .increment(1);
                    }
                    Admit::Full => {
                        metrics::counter!("retalk_connections_shed_total", "why" => "all_busy")
                            .increment(1);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: make room by
                    // closing an idle connection, and back off rather than
                    // spin; existing connections keep being served.
                    tracing::warn!("accept failed: {e}");
                    if book.shed_idle() {
                        metrics::counter!("retalk_connections_shed_total", "why" => "idle_for_room")
                            .increment(1);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Ok(id) = done {
                    book.remove(id);
                }
            }
            _ = shutdown.wait() => break,
        }
        metrics::gauge!("retalk_connections_open").set(book.len() as f64);
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} connection(s) still busy after {DRAIN_GRACE:?}; closing them",
            conns.len()
        );
        conns.shutdown().await;
    }
    drop(router);
    let _ = tokio::task::spawn_blocking(move || {
        workers.verifier.stop();
        for t in workers.verifier_threads {
            let _ = t.join();
        }
        workers.storage.stop();
    })
    .await;
}

/// Serves one connection. `timeout` bounds reading a request's head
/// (and idling between requests) and any stalled write of an answer.
async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    shutdown: Arc<Shutdown>,
    timeout: Duration,
    id: u64,
    state: Arc<ConnState>,
) -> u64 {
    // Answers are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let busy = Arc::clone(&state);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(crate::http::PeerAddr(peer));
            let mut router = router.clone();
            let guard = InFlight::new(&busy);
            async move {
                let resp = router.call(req).await;
                drop(guard);
                resp
            }
        });
    let conn = http1::Builder::new()
        // Its own timer per connection: re-armed about once per timeout,
        // not per request (see `crate::timer`).
        .timer(ConnTimer::new())
        // Also bounds how long an idle keep-alive connection stays open:
        // the timer runs while hyper waits for the next request's head.
        .header_read_timeout(timeout)
        // A request head over this is refused 431 however it arrives.
        // Without it hyper's only bound is its read buffer (about 400 KiB),
        // which a head arriving in large reads can overshoot, so a 500 KB
        // header was sometimes accepted (a flaky `hardening` test).
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(WriteTimeout::new(stream, timeout)), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        _ = state.close.notified() => {
            // Shed to make room: closes at once when idle (a request that
            // started meanwhile is finished first).
            metrics::counter!("retalk_connections_shed_total", "why" => "idle_for_room")
                .increment(1);
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    id
}

/// Marks a connection busy while one of its requests is handled.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: &Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
