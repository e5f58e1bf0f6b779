//! `retalk show --web`: every saved conversation as a local web app.
//!
//! A small axum server on 127.0.0.1 only, serving an embedded page
//! (`assets/`: HTML, one script, one style sheet; no CDN, no runtime files)
//! and a JSON API compatible with retalk 0.3.0's (`GET /api/conversations`,
//! `GET /api/messages?peer=ID&after=ROWID`), plus `GET /api/events`, a
//! server-sent-event stream that pushes each message the moment any
//! process saves it (0.3.0's page polls every 2 s).
//!
//! Security: message texts are decrypted for display, so
//! * every request needs the per-run random token (in `X-Retalk-Token` or
//!   `?t=`), compared in constant time; 403 otherwise;
//! * the `Host` header must name this server (`127.0.0.1:PORT` or
//!   `localhost:PORT`), so a DNS-rebinding page cannot reach it; 403
//!   otherwise;
//! * a strict Content-Security-Policy (no inline script or style, no other
//!   origin), `Cache-Control: no-store`, `Referrer-Policy: no-referrer`,
//!   `X-Content-Type-Options: nosniff`, no framing;
//! * the page renders every name and text with `textContent`, never as HTML.
//!
//! It never contacts the relay: the identity is opened only to read (and
//! decrypt) the saved rows.

use crate::backend::Identity;
use crate::chat::{self, ChatMsg, ConvKey, Names, StoreWatch};
use crate::error::CliError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The Content-Security-Policy of every response: only this origin's
/// script, style and API; nothing inline, no frames, no forms.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// What the handlers share.
struct Shared {
    token: String,
    hosts: [String; 2],
    model: RwLock<Model>,
    news: broadcast::Sender<Arc<ChatMsg>>,
    /// Asks the loop that owns the identity to read new rows now: the API
    /// answers from the store as it is at the request, not as the last
    /// timer tick saw it (another process may have just saved a message).
    fresh: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
}

impl Shared {
    /// Waits (briefly) until rows saved before this call are in the model.
    async fn catch_up(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.fresh.send(done).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), wait).await;
        }
    }
}

/// Every saved message, in memory (the page asks for them often; the store
/// is read once, then only for new rows).
struct Model {
    names: Names,
    msgs: Vec<Arc<ChatMsg>>,
}

impl Model {
    fn last(&self) -> i64 {
        self.msgs.last().map_or(0, |m| m.rowid)
    }

    fn after(&self, after: i64) -> impl Iterator<Item = &Arc<ChatMsg>> {
        let start = self.msgs.partition_point(|m| m.rowid <= after);
        self.msgs[start..].iter()
    }
}

/// A random token: 32 bytes from the OS generator, hex.
fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serves until `stop` resolves.
pub async fn serve(
    me: &Identity,
    dir: &Path,
    port: u16,
    stop: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let mut watch = StoreWatch::new(dir);
    let names = Names::load(me)?;
    let msgs: Vec<Arc<ChatMsg>> = chat::load_after(me, &names, None, 0)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            CliError::failure(format!("cannot listen on 127.0.0.1:{port}: {e}"))
                .hint("pick another port with --port N, or --port 0 for any free one")
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::failure(format!("cannot read the listening address: {e}")))?
        .port();
    let token = new_token();
    let me_name = names.me.clone();
    let (news, _) = broadcast::channel(1024);
    let (fresh, mut fresh_rx) = tokio::sync::mpsc::channel(64);
    let shared = Arc::new(Shared {
        token: token.clone(),
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        model: RwLock::new(Model { names, msgs }),
        news,
        fresh,
    });
    let app = router(shared.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    crate::output::note(&format!(
        "retalk: web view for {}: open\n  http://127.0.0.1:{port}/?t={token}",
        chat::neutralise(&me_name, false)
    ));
    crate::output::note(
        "retalk: listening on 127.0.0.1 only; the token in the URL is required (ctrl-c to stop)",
    );
    tokio::pin!(stop);
    let mut failing = false;
    let result = loop {
        let asked = tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tokio::time::sleep(chat::TICK) => None,
            Some(done) = fresh_rx.recv() => Some(done),
        };
        if server.is_finished() {
            break Err(CliError::failure("the web server stopped unexpectedly"));
        }
        if asked.is_none() && !watch.due() {
            continue;
        }
        match refresh(me, &shared) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                crate::output::note(&format!(
                    "retalk: cannot read new saved messages (will retry): {}",
                    e.message
                ));
            }
            Err(_) => {}
        }
        if let Some(done) = asked {
            let _ = done.send(());
        }
    };
    server.abort();
    result
}

/// Reads new rows (and the contact names) and pushes the new messages.
fn refresh(me: &Identity, shared: &Shared) -> Result<(), CliError> {
    let names = Names::load(me)?;
    let last = shared
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .last();
    let new = chat::load_after(me, &names, None, last)?;
    let mut model = shared
        .model
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    model.names = names;
    for m in new {
        let m = Arc::new(m);
        model.msgs.push(m.clone());
        // No subscriber is fine: nobody is looking.
        let _ = shared.news.send(m);
    }
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/api/conversations", get(conversations))
        .route("/api/messages", get(messages))
        .route("/api/events", get(events))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// The query parameter `key`, percent-decoded, if present.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Every request: the Host check, the token check, and the security
/// headers on every response (refusals included).
async fn guard(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let host_ok = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| s.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)));
    let given = req
        .headers()
        .get("x-retalk-token")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(req.uri().query(), "t"))
        .unwrap_or_default();
    let token_ok: bool = given.as_bytes().ct_eq(s.token.as_bytes()).into();
    let mut resp = if !host_ok {
        error(StatusCode::FORBIDDEN, "wrong Host header")
    } else if !token_ok {
        error(StatusCode::FORBIDDEN, "missing or bad token")
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

async fn index(State(s): State<Arc<Shared>>) -> Response {
    // The token is hex: safe in an attribute. The page's own requests for
    // its script and style carry it like every other request.
    let page = INDEX_HTML.replace("{{TOKEN}}", &s.token);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// One message as `/api/messages` returns it (0.3.0's fields, plus the
/// conversation and sender for the event stream).
fn message_json(m: &ChatMsg) -> Value {
    json!({
        "rowid": m.rowid,
        "direction": if m.mine { "out" } else { "in" },
        "name": m.name,
        "text": m.text,
        "ts": m.ts,
        "peer": m.conv.id(),
        "kind": m.conv.kind(),
        "from": m.sender,
    })
}

/// `GET /api/conversations`: `{"me", "conversations": [{"fingerprint",
/// "name", "count", "last_ts", ...}]}`, newest first, every saved contact
/// and every room included (0.3.0's shape; `last_text`, `last_direction`,
/// `last_rowid`, `kind` are additions; a room has `kind` `"room"`, its
/// group id as `fingerprint`/`id`, its label as `name`, `members`, and
/// `last_name`, who posted last).
async fn conversations(State(s): State<Arc<Shared>>) -> Response {
    s.catch_up().await;
    let model = s
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut convs: BTreeMap<ConvKey, (u64, Option<&ChatMsg>)> = model
        .names
        .contacts
        .keys()
        .filter(|id| **id != model.names.my_id)
        .map(|id| (ConvKey::Direct(id.clone()), (0, None)))
        .chain(
            model
                .names
                .rooms
                .iter()
                .filter(|(_, (_, members))| *members > 0)
                .map(|(id, _)| (ConvKey::Room(id.clone()), (0, None))),
        )
        .collect();
    for m in &model.msgs {
        let e = convs.entry(m.conv.clone()).or_insert((0, None));
        e.0 += 1;
        e.1 = Some(m);
    }
    let mut list: Vec<Value> = convs
        .into_iter()
        .map(|(key, (count, last))| {
            let id = key.id();
            let mut c = json!({
                "fingerprint": id,
                "id": id,
                "kind": key.kind(),
                "name": model.names.conv(&key),
                "count": count,
                "last_ts": last.map(|m| m.ts),
                "last_text": last.map(|m| m.text.as_str()),
                "last_direction": last.map(|m| if m.mine { "out" } else { "in" }),
                "last_rowid": last.map(|m| m.rowid),
            });
            if let ConvKey::Room(gid) = &key {
                c["members"] = json!(model.names.rooms.get(gid).map_or(0, |r| r.1));
                c["last_name"] = json!(last.map(|m| m.name.as_str()));
            }
            c
        })
        .collect();
    list.sort_by(|a, b| {
        let ts = |v: &Value| v["last_ts"].as_f64().unwrap_or(0.0);
        ts(b)
            .total_cmp(&ts(a))
            .then_with(|| a["name"].as_str().cmp(&b["name"].as_str()))
    });
    Json(json!({
        "me": model.names.me,
        "my_id": model.names.my_id,
        "last_rowid": model.last(),
        "conversations": list,
    }))
    .into_response()
}

/// `GET /api/messages?peer=ID&after=ROWID`: `{"messages": [{"rowid",
/// "direction", "name", "text", "ts"}]}`, oldest first.
async fn messages(State(s): State<Arc<Shared>>, req: Request) -> Response {
    s.catch_up().await;
    let q = req.uri().query();
    let peer = query_param(q, "peer").unwrap_or_default();
    let after = match query_param(q, "after").filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => match a.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return error(StatusCode::BAD_REQUEST, "after must be a row number"),
        },
    };
    let model = s
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let list: Vec<Value> = model
        .after(after)
        .filter(|m| m.conv.id() == peer)
        .map(|m| message_json(m))
        .collect();
    Json(json!({ "messages": list })).into_response()
}

/// `GET /api/events[?after=ROWID]`: server-sent events, one `message` event
/// (id = rowid, data = the message as in `/api/messages` with its `peer`)
/// per message saved after ROWID (or `Last-Event-ID` on a reconnect), then
/// each new one as it is saved.
async fn events(State(s): State<Arc<Shared>>, headers: HeaderMap, req: Request) -> Response {
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = from_header
        .or_else(|| query_param(req.uri().query(), "after").and_then(|a| a.parse().ok()))
        .unwrap_or_else(|| {
            s.model
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .last()
        });
    // Subscribe before reading the backlog, so nothing falls between.
    let rx = s.news.subscribe();
    let backlog: VecDeque<Arc<ChatMsg>> = s
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .after(after)
        .cloned()
        .collect();
    let state = (rx, backlog, after, s);
    let stream =
        futures_util::stream::unfold(state, |(mut rx, mut backlog, mut last, s)| async move {
            loop {
                if let Some(m) = backlog.pop_front() {
                    if m.rowid <= last {
                        continue;
                    }
                    last = m.rowid;
                    let ev = Event::default()
                        .id(m.rowid.to_string())
                        .data(message_json(&m).to_string());
                    return Some((
                        Ok::<_, std::convert::Infallible>(ev),
                        (rx, backlog, last, s),
                    ));
                }
                match rx.recv().await {
                    Ok(m) => backlog.push_back(m),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        backlog = s
                            .model
                            .read()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .after(last)
                            .cloned()
                            .collect();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_and_decoded() {
        assert_eq!(query_param(Some("t=abc&x=1"), "t").as_deref(), Some("abc"));
        assert_eq!(
            query_param(Some("x=1&t=a%20b+c"), "t").as_deref(),
            Some("a b c")
        );
        assert_eq!(query_param(Some("tt=1"), "t"), None);
        assert_eq!(query_param(None, "t"), None);
        assert_eq!(query_param(Some("t=%zz%"), "t").as_deref(), Some("%zz%"));
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
