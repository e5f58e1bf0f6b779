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
    /// Per-address budget for requests failing verification (`None`: off).
    pub rate: Option<Arc<crate::admission::RateLimits>>,
    /// Whether tool calls need an API key.
    pub require_api_key: bool,
    /// The valid API keys.
    pub api_keys: Arc<crate::admission::ApiKeys>,
    /// `/admin`.
    pub admin: Arc<crate::admin::Admin>,
}

/// The client's address, put on each request by the connection code.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

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
    let mut resp = json(
        status,
        serde_json::to_vec(&e.body()).unwrap_or_else(|_| b"{\"error\":\"error\"}".to_vec()),
    );
    if let WireError::LimitExceeded(text) = e {
        if let Some(secs) = crate::admission::retry_after_of(text) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    resp
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
        Method::GET | Method::HEAD if crate::admin::is_admin(req.uri().path()) => {
            Arc::clone(&app.admin).page(req.headers()).await
        }
        Method::POST if crate::admin::is_admin(req.uri().path()) => {
            let headers = req.headers().clone();
            match read_body(&app, req).await {
                Ok(body) => Arc::clone(&app.admin).action(&headers, body).await,
                Err(resp) => resp,
            }
        }
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
    metrics::counter!(
        "retalk_http_responses_total",
        "status" => crate::metrics::status_label(resp.status().as_u16())
    )
    .increment(1);
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

/// The API key a request carries: `Authorization: Bearer KEY` or
/// `X-Retalk-Key: KEY` (0.3.0's two ways).
fn api_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(v.trim());
    }
    headers
        .get("x-retalk-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Reads a body under the cap and the timeout, or the refusal to send.
async fn read_body(app: &App, req: Request) -> Result<Bytes, Response> {
    // Refuse an oversized body by its declared length, before reading it.
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > app.max_body as u64 {
            return Err(too_large(Some(len), app.max_body));
        }
    }
    let body = Limited::new(req.into_body(), app.max_body);
    match tokio::time::timeout(app.body_timeout, body.collect()).await {
        Err(_) => Err(error_status(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s",
                app.body_timeout.as_secs_f64()
            ),
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(too_large(None, app.max_body))
        }
        Ok(Err(e)) => Err(error_status(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn post(app: &App, req: Request) -> Response {
    // Admission first: cheap refusals before the body is read or any
    // signature checked.
    if app.require_api_key && !api_key(req.headers()).is_some_and(|k| app.api_keys.valid(k)) {
        metrics::counter!("retalk_api_key_refusals_total").increment(1);
        return error_status(
            StatusCode::UNAUTHORIZED,
            "valid API key required to use this relay (Authorization: Bearer KEY)".into(),
        );
    }
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    if let (Some(rate), Some(ip)) = (&app.rate, peer) {
        if let Err(e) = rate.check_address(ip) {
            return error(&e);
        }
    }
    let body = match read_body(app, req).await {
        Ok(b) => b,
        Err(resp) => return resp,
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
        Err(e) => {
            if let (Some(rate), Some(ip), WireError::Auth(_) | WireError::BadRequest(_)) =
                (&app.rate, peer, &e)
            {
                rate.failed(ip);
            }
            error(&e)
        }
    }
}

/// The 413 answer. `declared` is the Content-Length; a body without one (chunked) is
/// cut off at the cap, so only "more than the cap" is known.
fn too_large(declared: Option<u64>, max: usize) -> Response {
    let text = match declared {
        Some(len) => format!("request body too large: {len} bytes (max {max})"),
        None => format!("request body too large: more than {max} bytes (max {max})"),
    };
    error(&WireError::TooLarge(text))
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
