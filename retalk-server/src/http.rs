//! The HTTP face of the relay: `POST` (any path) carries a tool call,
//! `GET .../info` the public policy. Everything else is a JSON 404/405.
//!
//! The handler only moves bytes: it enforces the body cap and timeout, hands
//! the body to the verifier pool and waits for the committed answer (or, for
//! a `read_messages` with `wait`, for mail). Every refusal is a 4xx with
//! `{"error": ...}` naming the cause.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use retalk_proto::tools::Mail;
use retalk_proto::WireError;
use tokio::sync::oneshot;

use crate::verify::{VerifierHandle, VerifyJob};
use crate::waiters::{Shutdown, Waiters};
use crate::writer::{unavailable, Op, Outcome, WaitPlan, WriterHandle};

/// Target of the per-request log lines (see [`crate::Config::log_requests`]).
pub const ACCESS_LOG_TARGET: &str = "retalk_server::access";

/// Shared state of the HTTP layer.
pub struct App {
    /// Parses and authenticates bodies, then forwards them to the writer.
    pub verifier: VerifierHandle,
    /// For the re-checks of waiting reads.
    pub writer: WriterHandle,
    /// Waiting readers.
    pub waiters: Arc<Waiters>,
    /// Fired when the relay stops.
    pub shutdown: Arc<Shutdown>,
    /// The `GET /info` body, serialized once.
    pub info: Bytes,
    /// Largest accepted body.
    pub max_body: usize,
    /// Time allowed to receive a body.
    pub body_timeout: Duration,
    /// Whether to log every request.
    pub log_requests: bool,
}

/// The relay's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(e: &WireError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    json(
        status,
        serde_json::to_vec(&e.body()).unwrap_or_else(|_| b"{\"error\":\"error\"}".to_vec()),
    )
}

fn error_status(status: StatusCode, text: String) -> Response {
    json(
        status,
        serde_json::to_vec(&retalk_proto::ErrorBody { error: text })
            .unwrap_or_else(|_| b"{\"error\":\"error\"}".to_vec()),
    )
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let resp = match method {
        Method::POST => post(&app, req).await,
        Method::GET | Method::HEAD if is_info(req.uri().path()) => {
            json(StatusCode::OK, app.info.clone())
        }
        Method::GET | Method::HEAD => error_status(
            StatusCode::NOT_FOUND,
            "not found: POST a tool call to this URL, or GET /info".into(),
        ),
        _ => {
            let mut r = error_status(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed: POST a tool call, or GET /info"),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, GET"));
            r
        }
    };
    if app.log_requests || tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO) {
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            "{method} {} {:.1}ms",
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    resp
}

/// `/info`, also under a path prefix (`/relay/info`), as the reference.
fn is_info(path: &str) -> bool {
    path.trim_end_matches('/').rsplit('/').next() == Some("info")
}

async fn post(app: &App, req: Request) -> Response {
    // Refuse an oversized body by its declared length, before reading it.
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > app.max_body as u64 {
            return too_large(len.to_string(), app.max_body);
        }
    }
    let body = Limited::new(req.into_body(), app.max_body);
    let body = match tokio::time::timeout(app.body_timeout, body.collect()).await {
        Err(_) => {
            return error_status(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s",
                    app.body_timeout.as_secs_f64()
                ),
            )
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large("more than that".into(), app.max_body)
        }
        Ok(Err(e)) => {
            return error_status(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            )
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let (reply, rx) = oneshot::channel();
    app.verifier.submit(VerifyJob { body, reply });
    let outcome = match rx.await.unwrap_or_else(|_| Err(unavailable())) {
        Ok(Outcome::Mail {
            mail: _,
            wait: Some(plan),
        }) => wait_for_mail(app, plan)
            .await
            .map(|mail| Outcome::Mail { mail, wait: None }),
        other => other,
    };
    match outcome {
        Ok(outcome) => json(StatusCode::OK, serialize(&outcome)),
        Err(e) => error(&e),
    }
}

fn too_large(len: String, max: usize) -> Response {
    error(&WireError::TooLarge(format!(
        "request body too large: {len} bytes (max {max})"
    )))
}

fn serialize(outcome: &Outcome) -> Vec<u8> {
    let r = match outcome {
        Outcome::Published(p) => serde_json::to_vec(p),
        Outcome::Counts(c) => serde_json::to_vec(c),
        Outcome::Keys(k) => serde_json::to_vec(k),
        Outcome::Claimed(c) => serde_json::to_vec(c),
        Outcome::Sent(s) => serde_json::to_vec(s),
        Outcome::Mail { mail, .. } => serde_json::to_vec(mail),
        Outcome::Nacked => Ok(b"{\"ok\":true}".to_vec()),
    };
    // These types hold only strings, integers, booleans and finite floats.
    r.unwrap_or_else(|_| b"{\"error\":\"unserializable result\"}".to_vec())
}

/// Holds an empty `read_messages` open until mail for the caller arrives,
/// the deadline passes or the relay stops. Dropping this future (the
/// client went away) unregisters the waiter at once.
async fn wait_for_mail(app: &App, plan: WaitPlan) -> Result<Vec<Mail>, WireError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(plan.secs);
    let mut first = true;
    loop {
        // Register before looking, so mail stored in between still wakes us.
        let guard = app.waiters.register(&plan.caller);
        let notified = guard.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if app.shutdown.fired() {
            return Ok(Vec::new());
        }
        let look = Op::Read {
            peer: plan.peer.clone(),
            peek: plan.peek,
            wait: None,
        };
        match app.writer.call(plan.caller.clone(), None, look).await? {
            Outcome::Mail { mail, .. } if !mail.is_empty() => return Ok(mail),
            _ => {}
        }
        if first {
            // No id or key: just the fact, for operators and tests at debug.
            tracing::debug!(waiters = app.waiters.count(), "a read is waiting for mail");
            first = false;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            _ = app.shutdown.wait() => return Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_info;

    #[test]
    fn info_paths() {
        assert!(is_info("/info"));
        assert!(is_info("/info/"));
        assert!(is_info("/relay/info"));
        assert!(!is_info("/"));
        assert!(!is_info("/information"));
    }
}
