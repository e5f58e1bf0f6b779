//! HTTP to the relay: one signed POST per tool call, and `GET /info`.
//!
//! Requests are signed with both generations of `auth` field names
//! ([`Dialect::Both`]) so one client works with the 0.0.1 and 0.3.x Python
//! relays and with ours. Every request has a bounded timeout; a waiting
//! `read_messages` gets one longer than its wait. Responses are size-capped
//! and parsed into the tool's typed response: a relay is not trusted, so
//! anything else becomes an error value, never a panic.

use std::time::Duration;

use crate::proto::{
    build_request, AuthError, Dialect, ErrorBody, RelayInfo, RequestSigner, Tool, WireError,
};
use vodozemac::olm::Account;

use super::error::{sanitize, ClientError};

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole ordinary request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted (a full mailbox of large messages fits).
const MAX_RESPONSE: usize = 64 << 20;

/// Signs requests with an Olm account's Ed25519 key and publishes its
/// Curve25519 identity key, as every [`User`](crate::User) call does (the
/// protocol crate knows no Olm). Public for programs that build raw
/// requests with [`proto::build_request`](crate::proto::build_request).
pub struct OlmSigner<'a>(pub &'a Account);

impl RequestSigner for OlmSigner<'_> {
    fn identity_key(&self) -> String {
        self.0.curve25519_key().to_base64()
    }
    fn signing_key(&self) -> String {
        self.0.ed25519_key().to_base64()
    }
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// The relay client: one connection pool per [`User`](crate::User).
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer KEY` (relays that require an API key).
    pub(crate) api_key: Option<String>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unreachable(url: &str, e: &reqwest::Error) -> ClientError {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's own text names the cause (DNS, refused, TLS, ...).
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        ClientError::Unreachable(format!("{url}: {what}"))
    } else {
        ClientError::Unreachable(format!("{url}: {what} ({})", sanitize(&cause)))
    }
}

impl Transport {
    pub(crate) fn new() -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("retalk-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable(format!("cannot set up HTTP: {e}")))?;
        Ok(Transport {
            http,
            api_key: None,
        })
    }

    /// Calls `tool` on the relay at `url` (also the signed audience).
    pub(crate) async fn call<T: Tool>(
        &self,
        url: &str,
        account: &Account,
        tool: &T,
        timeout: Duration,
    ) -> Result<T::Response, ClientError> {
        let body = build_request(tool, &OlmSigner(account), url, Dialect::Both, now_secs())
            .map_err(|e| {
                ClientError::InvalidArgument(format!("cannot build {} request: {e}", T::NAME))
            })?;
        let mut req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        let status = resp.status();
        let bytes = read_capped(resp, url).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse {
                tool: T::NAME,
                detail: sanitize(&e.to_string()),
            });
        }
        let reason = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| sanitize(&b.error))
            .unwrap_or_else(|_| format!("HTTP {status}"));
        let mut error = WireError::from_status(status.as_u16(), reason.clone());
        // Reference relays answer signature failures with 400; keep them
        // recognisable as authentication refusals.
        if let WireError::BadRequest(_) = error {
            if let known @ (AuthError::KeysMismatch
            | AuthError::Stale
            | AuthError::BadSignature
            | AuthError::Replay) = AuthError::from_reason(reason)
            {
                error = WireError::Auth(known);
            }
        }
        Err(ClientError::Relay {
            tool: T::NAME,
            error,
        })
    }

    /// The relay's public policy (`GET /info`), or `None` when the relay
    /// does not serve one (0.0.1 relays answer only POST).
    pub(crate) async fn info(&self, url: &str) -> Result<Option<RelayInfo>, ClientError> {
        let info_url = format!("{}/info", url.trim_end_matches('/'));
        let resp = self
            .http
            .get(&info_url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let bytes = read_capped(resp, url).await?;
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

async fn read_capped(mut resp: reqwest::Response, url: &str) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(url, &e))? {
        if out.len() + chunk.len() > MAX_RESPONSE {
            return Err(ClientError::BadResponse {
                tool: "response",
                detail: format!("larger than {} MiB", MAX_RESPONSE >> 20),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
