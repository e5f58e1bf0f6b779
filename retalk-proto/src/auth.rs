//! Signed requests: the `auth` object every call carries.
//!
//! There are no accounts or tokens. A request proves its origin by itself:
//! it carries the caller's two public keys (which must hash to the claimed
//! user id) and an Ed25519 signature over
//! `tool|audience|user_id|ts|nonce|sha256(canonical args)`. Binding the
//! audience (the relay's public URL) makes a captured request useless at any
//! other relay; the timestamp window and the relay's nonce memory make it
//! useless twice at the same one.
//!
//! Two generations of field names exist (0.0.1: `user_id`/`ts`/`sig`, 0.3.x:
//! `fingerprint`/`timestamp`/`signature`). Verification accepts either;
//! signing can emit either or both, since each relay generation reads its own
//! names and ignores the others.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::ids::{IdError, IdentityKey, Nonce, SigningKey, UserId};

/// Largest allowed difference between the caller's clock and the relay's, in
/// seconds, in either direction.
pub const TIMESTAMP_WINDOW_SECS: i64 = 150;

/// Why a request's `auth` was refused. The messages are the ones reference
/// clients show their users, so they are kept word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request has no `auth` object.
    #[error("missing auth: every request must be signed (args.auth)")]
    Missing,
    /// A field is absent or not a string.
    #[error("auth is missing {0}")]
    MissingField(&'static str),
    /// A field is present but malformed.
    #[error("malformed auth: {0}")]
    Malformed(String),
    /// The keys do not hash to the claimed id.
    #[error("auth keys do not hash to user_id")]
    KeysMismatch,
    /// The timestamp is outside the window.
    #[error("stale or future timestamp (check the clock)")]
    Stale,
    /// The signature does not verify for any accepted audience.
    #[error("bad signature (wrong key, audience, or argument canonicalization)")]
    BadSignature,
    /// The nonce was used before.
    #[error("replay detected: nonce already used")]
    Replay,
    /// Another reason, as a relay worded it.
    #[error("{0}")]
    Other(String),
}

impl AuthError {
    /// The variant for a reason received from a relay (reference relays word
    /// the known reasons identically, and may answer them with status 400).
    pub fn from_reason(text: String) -> Self {
        [
            AuthError::KeysMismatch,
            AuthError::Stale,
            AuthError::BadSignature,
            AuthError::Replay,
        ]
        .into_iter()
        .find(|known| text.contains(&known.to_string()))
        .unwrap_or(AuthError::Other(text))
    }
}

impl From<IdError> for AuthError {
    fn from(e: IdError) -> Self {
        AuthError::Malformed(e.to_string())
    }
}

/// Which field names a client writes into `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// retalk 0.0.1: `user_id`, `ts`, `sig`.
    V001,
    /// retalk 0.3.x: `fingerprint`, `timestamp`, `signature`.
    V03,
    /// Both name sets at once, so any relay generation understands it.
    #[default]
    Both,
}

/// A parsed `auth` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The claimed user id.
    pub user_id: UserId,
    /// The caller's Curve25519 identity key.
    pub identity_key: IdentityKey,
    /// The caller's Ed25519 signing key.
    pub signing_key: SigningKey,
    /// Seconds since the epoch, as the decimal text that was signed.
    pub ts: String,
    /// Random per-request value the relay remembers to refuse replays.
    pub nonce: Nonce,
    /// The 64 signature bytes.
    pub sig: [u8; 64],
}

/// Something that can sign requests: the caller's keys.
pub trait RequestSigner {
    /// Curve25519 identity key, unpadded base64.
    fn identity_key(&self) -> String;
    /// Ed25519 signing (public) key, unpadded base64.
    fn signing_key(&self) -> String;
    /// Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> [u8; 64];
}

/// The text a request signature covers.
pub fn signed_text(
    tool: &str,
    audience: &str,
    user_id: &str,
    ts: &str,
    nonce: &str,
    args_sha256: &str,
) -> String {
    format!("{tool}|{audience}|{user_id}|{ts}|{nonce}|{args_sha256}")
}

fn field<'a>(auth: &'a Map<String, Value>, new: &str, old: &str) -> Option<&'a Value> {
    auth.get(new).or_else(|| auth.get(old))
}

/// Whether two JSON values carry the same text: equal values, or a number
/// and a string spelling it (`ts` may be either).
fn same_text(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // The common case (both dialects' names, same strings): no copies.
        (Value::String(x), Value::String(y)) => x == y,
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            n.to_string() == *s
        }
        _ => a == b,
    }
}

fn string_field<'a>(
    auth: &'a Map<String, Value>,
    names: &[&str],
    label: &'static str,
) -> Result<&'a str, AuthError> {
    let value = names
        .iter()
        .find_map(|n| auth.get(*n))
        .ok_or(AuthError::MissingField(label))?;
    value
        .as_str()
        .ok_or_else(|| AuthError::Malformed(format!("{label} must be a string")))
}

impl Auth {
    /// Reads an `auth` object written in either dialect.
    pub fn parse(value: &Value) -> Result<Self, AuthError> {
        let auth = value
            .as_object()
            .ok_or_else(|| AuthError::Malformed("auth must be an object".into()))?;
        // A body may carry both generations' names (ours do); they must then
        // say the same thing, or which one a relay reads would decide what
        // is checked.
        for (new, old) in [
            ("fingerprint", "user_id"),
            ("timestamp", "ts"),
            ("signature", "sig"),
        ] {
            if let (Some(a), Some(b)) = (auth.get(new), auth.get(old)) {
                if !same_text(a, b) {
                    return Err(AuthError::Malformed(format!(
                        "auth has both {new} and {old} and they differ"
                    )));
                }
            }
        }
        let user_id = string_field(
            auth,
            &["fingerprint", "user_id"],
            "user_id (or fingerprint)",
        )?;
        let identity_key = string_field(auth, &["identity_key"], "identity_key")?;
        let signing_key = string_field(auth, &["signing_key"], "signing_key")?;
        let nonce = string_field(auth, &["nonce"], "nonce")?;
        let sig = string_field(auth, &["signature", "sig"], "sig (or signature)")?;
        let ts = match field(auth, "timestamp", "ts") {
            None => return Err(AuthError::MissingField("ts (or timestamp)")),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(AuthError::Malformed("ts must be a decimal integer".into())),
        };
        Auth::from_fields(user_id, identity_key, signing_key, ts, nonce, sig)
    }

    /// Checks and decodes the fields of an `auth` object, once each has
    /// been found (under either dialect's name) and is text. Shared by
    /// [`Auth::parse`] and the request parser's fast path, so both accept
    /// exactly the same values.
    pub(crate) fn from_fields(
        user_id: &str,
        identity_key: &str,
        signing_key: &str,
        ts: String,
        nonce: &str,
        sig: &str,
    ) -> Result<Self, AuthError> {
        if ts.is_empty()
            || ts.len() > 20
            || !ts
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit())
            || ts.trim_start_matches('-').is_empty()
        {
            return Err(AuthError::Malformed("ts must be a decimal integer".into()));
        }
        let sig = STANDARD_NO_PAD
            .decode(sig.trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| {
                AuthError::Malformed("sig must be a 64-byte signature in base64".into())
            })?;
        Ok(Auth {
            user_id: UserId::parse(user_id, "auth user_id")?,
            identity_key: IdentityKey::parse(identity_key, "auth identity_key")?,
            signing_key: SigningKey::parse(signing_key, "auth signing_key")?,
            ts,
            nonce: Nonce::parse(nonce)?,
            sig,
        })
    }

    /// Signs a call to `tool` with business `args` for `audience`.
    pub fn sign(
        signer: &dyn RequestSigner,
        tool: &str,
        audience: &str,
        args_sha256: &str,
        now_secs: i64,
        nonce: Nonce,
    ) -> Result<Self, AuthError> {
        let identity_key = IdentityKey::parse(&signer.identity_key(), "identity_key")?;
        let signing_key = SigningKey::parse(&signer.signing_key(), "signing_key")?;
        let user_id = UserId::fingerprint(&identity_key, &signing_key);
        let ts = now_secs.to_string();
        let text = signed_text(
            tool,
            audience,
            user_id.as_str(),
            &ts,
            nonce.as_str(),
            args_sha256,
        );
        let sig = signer.sign(text.as_bytes());
        Ok(Auth {
            user_id,
            identity_key,
            signing_key,
            ts,
            nonce,
            sig,
        })
    }

    /// The `auth` object in the given dialect.
    pub fn to_value(&self, dialect: Dialect) -> Value {
        let mut m = Map::new();
        let sig = STANDARD_NO_PAD.encode(self.sig);
        if matches!(dialect, Dialect::V001 | Dialect::Both) {
            m.insert("user_id".into(), self.user_id.as_str().into());
            m.insert("ts".into(), self.ts.clone().into());
            m.insert("sig".into(), sig.clone().into());
        }
        if matches!(dialect, Dialect::V03 | Dialect::Both) {
            m.insert("fingerprint".into(), self.user_id.as_str().into());
            m.insert("timestamp".into(), self.ts.clone().into());
            m.insert("signature".into(), sig.into());
        }
        m.insert("identity_key".into(), self.identity_key.as_str().into());
        m.insert("signing_key".into(), self.signing_key.as_str().into());
        m.insert("nonce".into(), self.nonce.as_str().into());
        Value::Object(m)
    }

    /// Checks everything a relay can check without its nonce memory: the
    /// keys hash to the id, the timestamp is fresh, and the signature
    /// verifies for one of `audiences`. Returns the verified caller.
    ///
    /// The checks run in the reference's order so a request with several
    /// faults gets the same reason from either relay.
    pub fn verify(
        &self,
        tool: &str,
        audiences: &[String],
        args_sha256: &str,
        now_secs: i64,
    ) -> Result<&UserId, AuthError> {
        self.check_claims(now_secs)?;
        let key = self.signing_key.verifying_key();
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        for audience in audiences {
            let text = self.signed_text(tool, audience, args_sha256);
            if key.verify_strict(text.as_bytes(), &sig).is_ok() {
                return Ok(&self.user_id);
            }
        }
        Err(AuthError::BadSignature)
    }

    /// The checks of [`Auth::verify`] that come before the signature: the
    /// keys hash to the claimed id and the timestamp is within the window.
    /// Public so a relay can check signatures in batches after these.
    pub fn check_claims(&self, now_secs: i64) -> Result<(), AuthError> {
        if UserId::fingerprint(&self.identity_key, &self.signing_key) != self.user_id {
            return Err(AuthError::KeysMismatch);
        }
        let ts: i64 = self.ts.parse().map_err(|_| AuthError::Stale)?;
        // abs_diff: an extreme timestamp must be stale, not an overflow.
        if now_secs.abs_diff(ts) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
            return Err(AuthError::Stale);
        }
        Ok(())
    }

    /// The text this request's signature must cover for `audience`.
    pub fn signed_text(&self, tool: &str, audience: &str, args_sha256: &str) -> String {
        signed_text(
            tool,
            audience,
            self.user_id.as_str(),
            &self.ts,
            self.nonce.as_str(),
            args_sha256,
        )
    }
}

/// Signs with a bare Ed25519 key pair plus a Curve25519 identity key; for
/// tools (benchmarks, tests) that speak the protocol without an Olm account.
pub struct KeyPairSigner {
    /// The Ed25519 key that signs.
    pub signing: ed25519_dalek::SigningKey,
    /// The Curve25519 identity key to publish, unpadded base64.
    pub identity_key: String,
}

impl KeyPairSigner {
    /// Fresh random keys.
    pub fn random() -> Self {
        // A secret key is any 32 random bytes (RFC 8032, 5.1.5), drawn from
        // the operating system like the identity below.
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let identity: [u8; 32] = rand::random();
        // Any 32 bytes are a valid Curve25519 public key encoding.
        Self {
            signing,
            identity_key: STANDARD_NO_PAD.encode(identity),
        }
    }
}

impl RequestSigner for KeyPairSigner {
    fn identity_key(&self) -> String {
        self.identity_key.clone()
    }
    fn signing_key(&self) -> String {
        STANDARD_NO_PAD.encode(self.signing.verifying_key().as_bytes())
    }
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }
}
