//! `/admin`: the API-key page and API, compatible with 0.3.0's.
//!
//! Off unless an admin password is configured (then every `/admin` request
//! answers 404, as if it did not exist). With one, HTTP Basic with that
//! password (any user name) opens:
//!
//! * `GET .../admin`: an HTML page listing the keys (hashes, labels,
//!   status);
//! * `POST .../admin` with `{"action": ...}`: `create` (`label`) answers
//!   `{"key", "key_hash", "label"}`, the raw key shown this once; `list`
//!   answers `{"keys": [{"key_hash", "label", "created", "disabled"}]}`;
//!   `disable`, `enable` (`key_hash`) answer `{"updated": n}`; `delete`
//!   (`key_hash`) answers `{"deleted": n}`.
//!
//! Keys are stored as SHA-256 hex in the reference's `api_keys` table, so
//! keys minted by a 0.3.0 relay on the same file keep working. On
//! PostgreSQL they live in `retalk_api_keys`, shared by every replica: a
//! change commits with a `pg_notify` on [`KEYS_CHANNEL`], on which every
//! replica reloads its set, and each also reloads every
//! [`crate::storage::postgres::KEYS_RELOAD`] in case a notification was
//! lost (or the engine has none).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::admission::{hash_key, AdminPassword, ApiKeys};

/// The channel on which a key change is announced to the other replicas.
pub const KEYS_CHANNEL: &str = "retalk_keys";

/// Where the keys are kept.
pub enum KeyStore {
    /// The relay's SQLite file (admin work opens its own short-lived
    /// connection).
    Sqlite(PathBuf),
    /// The PostgreSQL database every replica shares.
    Postgres(deadpool_postgres::Pool),
}

/// What the admin routes need.
pub struct Admin {
    /// The password; `None` disables `/admin`.
    pub password: Option<AdminPassword>,
    /// Where the keys are kept.
    pub store: KeyStore,
    /// The valid keys the HTTP layer checks, reloaded after every change.
    pub keys: Arc<ApiKeys>,
}

/// Whether `path` is the admin endpoint (its last segment is `admin`, so it
/// also works under a path prefix, as the reference).
pub fn is_admin(path: &str) -> bool {
    path.trim_end_matches('/').rsplit('/').next() == Some("admin")
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_reply(status: StatusCode, v: &Value) -> Response {
    reply(status, "application/json", v.to_string())
}

fn error(status: StatusCode, text: &str) -> Response {
    json_reply(status, &json!({ "error": text }))
}

impl Admin {
    /// Answers 404 when disabled, 401 (with a Basic challenge) without the
    /// password, else `None`: go ahead.
    fn gate(&self, headers: &HeaderMap) -> Option<Response> {
        let Some(password) = &self.password else {
            return Some(error(StatusCode::NOT_FOUND, "not found"));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .map(|userpass| {
                userpass
                    .split_once(':')
                    .map(|(_, p)| p.to_owned())
                    .unwrap_or_default()
            });
        // Compare even when nothing was given, so timing says nothing.
        let ok = password.matches(given.as_deref().unwrap_or("")) && given.is_some();
        if ok {
            return None;
        }
        let mut resp = error(StatusCode::UNAUTHORIZED, "admin auth required");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"retalk admin\""),
        );
        Some(resp)
    }

    /// `GET .../admin`: the page.
    pub async fn page(self: Arc<Self>, headers: &HeaderMap) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        let keys = match &self.store {
            KeyStore::Sqlite(db) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || list(&open(&db)?))
                    .await
                    .ok()
                    .and_then(|r| r.map_err(|e| unavailable(e.into())).ok())
            }
            KeyStore::Postgres(pool) => pg::list(pool).await.map_err(unavailable).ok(),
        };
        match keys {
            Some(keys) => reply(StatusCode::OK, "text/html; charset=utf-8", page_html(&keys)),
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay's database is unavailable",
            ),
        }
    }

    /// `POST .../admin`: one action.
    pub async fn action(self: Arc<Self>, headers: &HeaderMap, body: Bytes) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        let req: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}")),
            }
        };
        let action = match Action::parse(&req) {
            Ok(a) => a,
            Err(text) => return error(StatusCode::BAD_REQUEST, &text),
        };
        let result = match &self.store {
            KeyStore::Sqlite(db) => {
                let (db, keys) = (db.clone(), Arc::clone(&self.keys));
                tokio::task::spawn_blocking(move || -> Result<Value, AdminError> {
                    let conn = open(&db)?;
                    let out = run(&conn, action)?;
                    keys.load(&conn)?;
                    Ok(out)
                })
                .await
                .unwrap_or_else(|e| Err(AdminError::Task(e.to_string())))
            }
            KeyStore::Postgres(pool) => pg::run(pool, &self.keys, action).await,
        };
        match result {
            Ok(v) => json_reply(StatusCode::OK, &v),
            Err(e) => {
                let (status, text) = unavailable(e);
                error(status, &text)
            }
        }
    }
}

/// Why admin work against the database failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection.
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The blocking task died.
    #[error("admin task failed: {0}")]
    Task(String),
}

/// One admin request, parsed.
#[derive(Debug)]
pub enum Action {
    /// Mint a key with this label.
    Create(String),
    /// List the keys.
    List,
    /// Disable (`true`) or enable a key by hash.
    SetDisabled(String, bool),
    /// Delete a key by hash.
    Delete(String),
}

impl Action {
    /// Reads `{"action": ...}` (0.3.0's admin API).
    pub fn parse(req: &Value) -> Result<Action, String> {
        let key_hash = || {
            req.get("key_hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| "key_hash (a string) is required".to_owned())
        };
        match req.get("action").and_then(Value::as_str) {
            Some("create") => match req.get("label") {
                None | Some(Value::Null) => Ok(Action::Create(String::new())),
                Some(Value::String(s)) => Ok(Action::Create(s.clone())),
                Some(_) => Err("label must be a string".into()),
            },
            Some("list") => Ok(Action::List),
            Some(action @ ("disable" | "enable")) => {
                Ok(Action::SetDisabled(key_hash()?, action == "disable"))
            }
            Some("delete") => Ok(Action::Delete(key_hash()?)),
            other => Err(format!(
                "unknown admin action: {} (create|list|disable|enable|delete)",
                other.map_or("none".to_owned(), |a| format!("{a:?}"))
            )),
        }
    }
}

/// A fresh raw key and its hash.
fn mint() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let key = URL_SAFE_NO_PAD.encode(raw);
    let kh = hash_key(&key);
    (key, kh)
}

fn unavailable(e: AdminError) -> (StatusCode, String) {
    tracing::warn!("admin database work failed: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the relay's database is unavailable; retry later".into(),
    )
}

fn open(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn run(conn: &Connection, action: Action) -> Result<Value, AdminError> {
    Ok(match action {
        Action::Create(label) => {
            let (key, kh) = mint();
            conn.execute(
                "INSERT INTO api_keys(key_hash, label, created, disabled) VALUES(?1, ?2, ?3, 0)",
                params![kh, label, crate::unix_now(0)],
            )?;
            json!({"key": key, "key_hash": kh, "label": label})
        }
        Action::List => json!({ "keys": list(conn)? }),
        Action::SetDisabled(kh, disabled) => {
            let n = conn.execute(
                "UPDATE api_keys SET disabled=?1 WHERE key_hash=?2",
                params![i64::from(disabled), kh],
            )?;
            json!({ "updated": n })
        }
        Action::Delete(kh) => {
            let n = conn.execute("DELETE FROM api_keys WHERE key_hash=?1", [kh])?;
            json!({ "deleted": n })
        }
    })
}

/// The same actions on PostgreSQL.
pub mod pg {
    use deadpool_postgres::Pool;
    use serde_json::{json, Value};

    use super::{mint, Action, AdminError, KEYS_CHANNEL};
    use crate::admission::ApiKeys;

    /// Runs `action`; a change commits with a notification to every
    /// replica, and this replica's set is reloaded before the answer.
    pub async fn run(pool: &Pool, keys: &ApiKeys, action: Action) -> Result<Value, AdminError> {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let out = match action {
            Action::List => return Ok(json!({ "keys": list_on(&tx).await? })),
            Action::Create(label) => {
                let (key, kh) = mint();
                tx.execute(
                    "INSERT INTO retalk_api_keys(key_hash, label, created, disabled) \
                     VALUES($1::text, $2::text, $3::float8, 0)",
                    &[&kh, &label, &crate::unix_now(0)],
                )
                .await?;
                json!({"key": key, "key_hash": kh, "label": label})
            }
            Action::SetDisabled(kh, disabled) => {
                let n = tx
                    .execute(
                        "UPDATE retalk_api_keys SET disabled = $1::int4 WHERE key_hash = $2::text",
                        &[&i32::from(disabled), &kh],
                    )
                    .await?;
                json!({ "updated": n })
            }
            Action::Delete(kh) => {
                let n = tx
                    .execute(
                        "DELETE FROM retalk_api_keys WHERE key_hash = $1::text",
                        &[&kh],
                    )
                    .await?;
                json!({ "deleted": n })
            }
        };
        // Engines without NOTIFY refuse it: the others' periodic reload
        // covers them, and the change must not fail for it.
        tx.batch_execute("SAVEPOINT notify").await?;
        if tx
            .execute("SELECT pg_notify($1::text, ''::text)", &[&KEYS_CHANNEL])
            .await
            .is_err()
        {
            tx.batch_execute("ROLLBACK TO SAVEPOINT notify").await?;
        }
        tx.commit().await?;
        reload(&client, keys).await?;
        Ok(out)
    }

    /// Replaces `keys` with the database's enabled keys.
    pub async fn reload(client: &tokio_postgres::Client, keys: &ApiKeys) -> Result<(), AdminError> {
        let rows = client
            .query(
                "SELECT key_hash FROM retalk_api_keys WHERE disabled = 0",
                &[],
            )
            .await?;
        keys.replace(rows.iter().filter_map(|r| r.get::<_, Option<String>>(0)));
        Ok(())
    }

    /// Every key, for the page and `list`.
    pub async fn list(pool: &Pool) -> Result<Vec<Value>, AdminError> {
        let client = pool.get().await?;
        list_on(&client).await
    }

    async fn list_on(
        client: &impl deadpool_postgres::GenericClient,
    ) -> Result<Vec<Value>, AdminError> {
        let rows = client
            .query(
                "SELECT key_hash, label, created, disabled FROM retalk_api_keys ORDER BY created",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({
                    "key_hash": r.get::<_, Option<String>>(0),
                    "label": r.get::<_, Option<String>>(1),
                    "created": r.get::<_, Option<f64>>(2),
                    "disabled": r.get::<_, Option<i32>>(3).unwrap_or(0) != 0,
                })
            })
            .collect())
    }
}

fn list(conn: &Connection) -> rusqlite::Result<Vec<Value>> {
    let mut stmt =
        conn.prepare("SELECT key_hash, label, created, disabled FROM api_keys ORDER BY created")?;
    let rows = stmt.query_map([], |r| {
        Ok(json!({
            "key_hash": r.get::<_, Option<String>>(0)?,
            "label": r.get::<_, Option<String>>(1)?,
            "created": r.get::<_, Option<f64>>(2)?,
            "disabled": r.get::<_, Option<i64>>(3)?.unwrap_or(0) != 0,
        }))
    })?;
    rows.collect()
}

/// Escapes text for HTML (labels are whatever an admin typed, and the page
/// must never run them).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn page_html(keys: &[Value]) -> String {
    let rows: String = keys
        .iter()
        .map(|k| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(k["key_hash"].as_str().unwrap_or("")),
                escape(k["label"].as_str().unwrap_or("")),
                if k["disabled"].as_bool().unwrap_or(false) {
                    "disabled"
                } else {
                    "active"
                }
            )
        })
        .collect();
    let rows = if rows.is_empty() {
        "<tr><td colspan=3>(no keys yet)</td></tr>".to_owned()
    } else {
        rows
    };
    format!(
        "<!doctype html><meta charset=utf-8><title>retalk admin</title>\
         <h1>retalk relay &mdash; API keys</h1>\
         <p>API keys gate <em>use of this relay</em> only. They are stored hashed and \
         the raw key is shown just once, at creation.</p>\
         <table border=1 cellpadding=6><tr><th>key_hash</th><th>label</th><th>status</th></tr>\
         {rows}</table>\
         <h2>Manage (HTTP Basic with the admin password)</h2><pre>\
         # create a key (the answer holds the raw key, once)\n\
         curl -u admin:PW -X POST URL/admin -d '{{\"action\":\"create\",\"label\":\"alice\"}}'\n\
         # list keys (hashes only)\n\
         curl -u admin:PW -X POST URL/admin -d '{{\"action\":\"list\"}}'\n\
         # disable / enable / delete by key_hash\n\
         curl -u admin:PW -X POST URL/admin -d '{{\"action\":\"disable\",\"key_hash\":\"...\"}}'\n\
         curl -u admin:PW -X POST URL/admin -d '{{\"action\":\"delete\",\"key_hash\":\"...\"}}'\n\
         </pre>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_on_the_page() {
        let page = page_html(&[
            json!({"key_hash": "ab", "label": "<script>x</script>", "disabled": false}),
        ]);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn admin_paths() {
        assert!(is_admin("/admin"));
        assert!(is_admin("/relay/admin/"));
        assert!(!is_admin("/administer"));
    }
}
