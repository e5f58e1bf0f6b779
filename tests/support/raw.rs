//! A peer that speaks the protocol by hand (a bare vodozemac account and
//! signed requests), to send what the library never would: unknown envelope
//! kinds, garbage ciphertext, replays.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use retalk::proto::tools::{ClaimKey, MessageType, PublishKeys, SendMessage, Tool};
use retalk::proto::{build_request, Dialect, IdentityKey, SigningKey, UserId, WireError};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

pub struct RawPeer {
    pub account: Account,
    pub url: String,
    http: reqwest::Client,
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl RawPeer {
    /// A new account, published with `n` one-time keys and a fallback key.
    pub async fn new(url: &str, n: usize) -> RawPeer {
        let mut account = Account::new();
        account.generate_one_time_keys(n);
        account.generate_fallback_key();
        let peer = RawPeer {
            account,
            url: url.to_owned(),
            http: reqwest::Client::new(),
        };
        let req = PublishKeys {
            identity_key: IdentityKey::parse(&peer.account.curve25519_key().to_base64(), "ik")
                .unwrap(),
            signing_key: SigningKey::parse(&peer.account.ed25519_key().to_base64(), "sk").unwrap(),
            one_time_keys: peer
                .account
                .one_time_keys()
                .into_iter()
                .map(|(id, k)| {
                    (
                        id.to_base64(),
                        IdentityKey::parse(&k.to_base64(), "k").unwrap(),
                    )
                })
                .collect(),
            fallback_key: peer
                .account
                .fallback_key()
                .into_iter()
                .map(|(id, k)| {
                    (
                        id.to_base64(),
                        IdentityKey::parse(&k.to_base64(), "k").unwrap(),
                    )
                })
                .next(),
        };
        peer.call(&req).await.unwrap();
        let mut peer = peer;
        peer.account.mark_keys_as_published();
        peer
    }

    pub fn id(&self) -> UserId {
        UserId::parse(
            &retalk::proto::fingerprint(
                &self.account.curve25519_key().to_base64(),
                &self.account.ed25519_key().to_base64(),
            ),
            "id",
        )
        .unwrap()
    }

    /// A signed request body for `tool`, signed at `ts` for `audience`.
    pub fn body<T: Tool>(&self, tool: &T, audience: &str, ts: i64) -> Vec<u8> {
        build_request(
            tool,
            &retalk_testkit::OlmSigner(&self.account),
            audience,
            Dialect::Both,
            ts,
        )
        .unwrap()
    }

    /// Posts a prepared body; the relay's status and parsed error on failure.
    pub async fn post<T: Tool>(&self, body: Vec<u8>) -> Result<T::Response, WireError> {
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        if status == 200 {
            Ok(serde_json::from_slice(&bytes).unwrap())
        } else {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            Err(WireError::from_status(
                status,
                v["error"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    }

    pub async fn call<T: Tool>(&self, tool: &T) -> Result<T::Response, WireError> {
        self.post::<T>(self.body(tool, &self.url, now_secs())).await
    }

    /// A new outbound session to `to` from a claimed key.
    pub async fn start_session(&self, to: &UserId) -> Session {
        let k = self.call(&ClaimKey { peer: to.clone() }).await.unwrap();
        self.account
            .create_outbound_session(
                SessionConfig::version_1(),
                Curve25519PublicKey::from_base64(&k.identity_key).unwrap(),
                Curve25519PublicKey::from_base64(&k.one_time_key).unwrap(),
            )
            .unwrap()
    }

    /// Encrypts `plaintext` on `session` and sends it to `to`.
    pub async fn send_plain(&self, session: &mut Session, to: &UserId, plaintext: &str) {
        let (mtype, body) = session.encrypt(plaintext).unwrap().to_parts();
        self.send_raw(to, mtype as u8, STANDARD.encode(body)).await;
    }

    /// Sends any body with any message type.
    pub async fn send_raw(&self, to: &UserId, mtype: u8, body: String) {
        self.call(&SendMessage {
            to: to.clone(),
            mtype: MessageType::try_from(mtype).unwrap(),
            body,
        })
        .await
        .unwrap();
    }

    /// Decrypts a body received on `session`.
    pub fn decrypt(session: &mut Session, mtype: i64, body: &str) -> serde_json::Value {
        let bytes = STANDARD.decode(body).unwrap();
        let msg = OlmMessage::from_parts(mtype as usize, &bytes).unwrap();
        serde_json::from_slice(&session.decrypt(&msg).unwrap()).unwrap()
    }
}
