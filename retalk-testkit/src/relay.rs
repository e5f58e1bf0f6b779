//! A relay on loopback with its database in a temp dir, in this process,
//! and a small signing client for speaking the wire protocol to it: the one
//! in-process relay starter of the workspace's tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use retalk_proto::tools::{MessageType, PublishKeys, SendMessage, Tool};
use retalk_proto::{build_request, Dialect, IdentityKey, KeyPairSigner, RequestSigner, UserId};
use retalk_server::{Config, Relay};
use serde_json::Value;

/// A relay, the temp dir holding its database, and an HTTP client for it.
pub struct TestRelay {
    /// The relay.
    pub relay: Relay,
    /// Holds `server.db`; removed on drop.
    pub dir: tempfile::TempDir,
    /// A client with a long timeout, for raw calls.
    pub http: reqwest::Client,
}

/// Default settings on a free loopback port with `dir/server.db`.
pub fn config(dir: &Path) -> Config {
    Config {
        port: 0,
        db: dir.join("server.db"),
        ..Default::default()
    }
}

/// A relay with default settings.
pub async fn start() -> TestRelay {
    start_with(|_| {}).await
}

/// A relay with settings changed by `tweak`.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    tweak(&mut cfg);
    let relay = Relay::start(cfg).await.unwrap();
    TestRelay {
        relay,
        dir,
        http: client(),
    }
}

/// An HTTP client with a timeout longer than any relay wait.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The user id of a signer's keys.
pub fn id_of(signer: &dyn RequestSigner) -> UserId {
    UserId::parse(
        &retalk_proto::fingerprint(&signer.identity_key(), &signer.signing_key()),
        "id",
    )
    .unwrap()
}

/// Random bytes that pass for a Curve25519 key.
pub fn random_key() -> IdentityKey {
    let bytes: [u8; 32] = rand::random();
    IdentityKey::parse(&STANDARD_NO_PAD.encode(bytes), "key").unwrap()
}

/// A publish of `n` fresh one-time keys (ids `k0`, `k1`, ...) and
/// optionally a fallback key.
pub fn publish_req(signer: &KeyPairSigner, n: usize, fallback: bool) -> PublishKeys {
    PublishKeys {
        identity_key: IdentityKey::parse(&signer.identity_key(), "ik").unwrap(),
        signing_key: retalk_proto::SigningKey::parse(&signer.signing_key(), "sk").unwrap(),
        one_time_keys: (0..n).map(|i| (format!("k{i}"), random_key())).collect(),
        fallback_key: fallback.then(|| ("fb".to_owned(), random_key())),
    }
}

/// A `send_message` of `text` to `to`.
pub fn send_req(to: &UserId, text: &str) -> SendMessage {
    SendMessage::new(to.clone(), MessageType::Normal, text.as_bytes())
}

impl TestRelay {
    /// A relay with default settings (as [`start`]).
    pub async fn start() -> TestRelay {
        start().await
    }

    /// Its database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("server.db")
    }

    /// A read-write connection to the relay's database, as the reference's
    /// tests use it to inspect and tamper.
    pub fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    /// The audience requests are signed for (not necessarily reachable).
    pub fn url(&self) -> String {
        self.relay.url()
    }

    /// Where the relay really listens, on loopback.
    pub fn addr(&self) -> String {
        format!("http://{}", self.relay.local_addr())
    }

    /// POSTs raw bytes; returns the status and the parsed JSON body.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        post_raw(&self.http, &self.addr(), body).await
    }

    /// A signed call in the default (both-names) dialect.
    pub async fn call<T: Tool>(
        &self,
        signer: &(dyn RequestSigner + Sync),
        tool: &T,
    ) -> (u16, Value) {
        self.call_as(signer, tool, Dialect::Both).await
    }

    /// A signed call in `dialect`.
    pub async fn call_as<T: Tool>(
        &self,
        signer: &(dyn RequestSigner + Sync),
        tool: &T,
        dialect: Dialect,
    ) -> (u16, Value) {
        let body = build_request(tool, signer, &self.url(), dialect, now()).unwrap();
        self.post_raw(body).await
    }

    /// A call that must succeed.
    pub async fn ok<T: Tool>(&self, signer: &(dyn RequestSigner + Sync), tool: &T) -> Value {
        let (status, body) = self.call(signer, tool).await;
        assert_eq!(status, 200, "{} failed: {body}", T::NAME);
        body
    }

    /// A fresh user with `n` one-time keys and a fallback key published.
    pub async fn user(&self, n: usize) -> (KeyPairSigner, UserId) {
        let signer = KeyPairSigner::random();
        let id = id_of(&signer);
        self.ok(&signer, &publish_req(&signer, n, true)).await;
        (signer, id)
    }
}

/// POSTs raw bytes to `url`; the status and the parsed JSON body.
pub async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("relay answered non-JSON ({e}): {text:?}"));
    (status, value)
}

/// The `error` text of a refusal.
pub fn error_text(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error text in {body}"))
}

/// A correctly signed request for any tool name and any args (including
/// ones the relay must refuse), so a refusal is about the args alone.
pub fn signed_body(
    signer: &dyn RequestSigner,
    tool: &str,
    args: serde_json::Map<String, Value>,
    audience: &str,
) -> Vec<u8> {
    let hash = retalk_proto::args_sha256(&args).unwrap();
    let auth = retalk_proto::Auth::sign(
        signer,
        tool,
        audience,
        &hash,
        now(),
        retalk_proto::Nonce::random(),
    )
    .unwrap();
    let mut args = args;
    args.insert("auth".into(), auth.to_value(Dialect::Both));
    serde_json::json!({"tool": tool, "args": args})
        .to_string()
        .into_bytes()
}
