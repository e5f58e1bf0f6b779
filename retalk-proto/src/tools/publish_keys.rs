//! `publish_keys`: put the caller's long-term keys, a batch of one-time keys
//! and optionally a new fallback key on the relay. The first call creates the
//! caller's mailbox; there is no other registration.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;
use crate::ids::{IdentityKey, SigningKey};

/// Most one-time keys one request may carry. Clients publish 100 at a time;
/// anything far beyond that is abuse, not replenishment.
pub const MAX_KEYS_PER_PUBLISH: usize = 1000;

/// Longest accepted key id (vodozemac's are 11 characters).
pub const MAX_KEY_ID_LEN: usize = 64;

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishKeys {
    /// Curve25519 identity key.
    pub identity_key: IdentityKey,
    /// Ed25519 signing key.
    pub signing_key: SigningKey,
    /// New one-time keys, `(key_id, key)`, in key-id order.
    pub one_time_keys: Vec<(String, IdentityKey)>,
    /// A new fallback key replacing the previous one, if any.
    pub fallback_key: Option<(String, IdentityKey)>,
}

/// What the relay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Always true.
    pub ok: bool,
    /// The caller's id (0.0.1 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The caller's id (0.3.x name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// How many one-time keys were stored.
    pub one_time_keys_added: u64,
    /// Whether the fallback key was replaced.
    pub fallback_key_set: bool,
}

fn key_entries(
    a: &Args<'_>,
    name: &'static str,
    map: &Map<String, Value>,
) -> Result<Vec<(String, IdentityKey)>, WireError> {
    let mut out = Vec::with_capacity(map.len());
    for (key_id, key) in map {
        if key_id.is_empty()
            || key_id.len() > MAX_KEY_ID_LEN
            || key_id.chars().any(char::is_control)
        {
            return Err(WireError::BadRequest(format!(
                "{}: {name} has a key id that is empty, longer than {MAX_KEY_ID_LEN} characters or not printable",
                a.tool()
            )));
        }
        let key = key
            .as_str()
            .and_then(|k| IdentityKey::parse(k, name).ok())
            .ok_or_else(|| {
                WireError::BadRequest(format!(
                    "{}: {name}[{key_id:?}] must be a 32-byte key in unpadded base64",
                    a.tool()
                ))
            })?;
        out.push((key_id.clone(), key));
    }
    Ok(out)
}

impl Tool for PublishKeys {
    const NAME: &'static str = "publish_keys";
    type Response = Published;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(
            Self::NAME,
            args,
            &[
                "identity_key",
                "signing_key",
                "one_time_keys",
                "fallback_key",
            ],
        )?;
        let identity_key = a.key("identity_key")?;
        let signing_key = SigningKey::parse(a.string("signing_key")?, "signing_key").map_err(|_| {
            WireError::BadRequest(
                "publish_keys: argument \"signing_key\" must be an Ed25519 public key in unpadded base64".into(),
            )
        })?;
        a.required("one_time_keys")?;
        let otks = a.object("one_time_keys")?;
        if otks.is_some_and(|m| m.len() > MAX_KEYS_PER_PUBLISH) {
            return Err(WireError::BadRequest(format!(
                "publish_keys: at most {MAX_KEYS_PER_PUBLISH} one-time keys per request"
            )));
        }
        let one_time_keys = match otks {
            Some(m) => key_entries(&a, "one_time_keys", m)?,
            None => Vec::new(),
        };
        let fallback_key = match a.object("fallback_key")? {
            None => None,
            Some(m) if m.is_empty() => None,
            Some(m) if m.len() == 1 => key_entries(&a, "fallback_key", m)?.pop(),
            Some(_) => {
                return Err(WireError::BadRequest(
                    "publish_keys: fallback_key must hold exactly one key_id -> key entry".into(),
                ))
            }
        };
        Ok(PublishKeys {
            identity_key,
            signing_key,
            one_time_keys,
            fallback_key,
        })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("identity_key".into(), self.identity_key.as_str().into());
        m.insert("signing_key".into(), self.signing_key.as_str().into());
        let otks: Map<String, Value> = self
            .one_time_keys
            .iter()
            .map(|(id, k)| (id.clone(), Value::from(k.as_str())))
            .collect();
        m.insert("one_time_keys".into(), Value::Object(otks));
        m.insert(
            "fallback_key".into(),
            match &self.fallback_key {
                None => Value::Null,
                Some((id, k)) => {
                    let mut f = Map::new();
                    f.insert(id.clone(), k.as_str().into());
                    Value::Object(f)
                }
            },
        );
        m
    }
}
