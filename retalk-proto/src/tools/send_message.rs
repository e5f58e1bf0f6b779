//! `send_message`: store one Olm ciphertext in a recipient's mailbox. The
//! recorded sender is always the authenticated caller.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;
use crate::ids::UserId;

/// The Olm message type, as numbered on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum MessageType {
    /// 0: a pre-key message, which can start a session.
    PreKey,
    /// 1: a normal message on an existing session.
    Normal,
}

impl TryFrom<u8> for MessageType {
    type Error = WireError;
    fn try_from(n: u8) -> Result<Self, WireError> {
        match n {
            0 => Ok(MessageType::PreKey),
            1 => Ok(MessageType::Normal),
            _ => Err(WireError::BadRequest(format!(
                "mtype must be 0 (pre-key) or 1 (normal), got {n}"
            ))),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::PreKey => 0,
            MessageType::Normal => 1,
        }
    }
}

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// The recipient.
    pub to: UserId,
    /// Pre-key or normal.
    pub mtype: MessageType,
    /// The Olm message bytes in padded standard base64. Kept as text: the
    /// duplicate and refusal checks hash this exact text.
    pub body: String,
}

impl SendMessage {
    /// What `body` must be: non-empty padded standard base64 (checked by
    /// both request parsers, so they accept the same bodies).
    pub(crate) fn body_is_valid(body: &str) -> bool {
        !body.is_empty() && STANDARD.decode(body).is_ok()
    }

    /// A request for raw Olm message bytes.
    pub fn new(to: UserId, mtype: MessageType, ciphertext: &[u8]) -> Self {
        SendMessage {
            to,
            mtype,
            body: STANDARD.encode(ciphertext),
        }
    }
}

/// The relay's answer: stored, or refused because the recipient signed a
/// refusal of this exact ciphertext (0.3.x `nack`).
///
/// Deserialized by hand: serde's untagged enums buffer numbers in a way
/// that fails under serde_json's `arbitrary_precision` (which this
/// workspace enables), so `{"message_id": 1, "ts": 1.5}` would not parse.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SendOutcome {
    /// Refused; `sig` is the recipient's signature over `nack|<them>|<hash>`.
    Refused {
        /// Always true.
        refused: bool,
        /// sha256 hex of the body.
        hash: String,
        /// The recipient's refusal signature.
        sig: String,
    },
    /// Stored (and on disk) under this id.
    Stored {
        /// The relay's id for the message.
        message_id: i64,
        /// When it was stored, seconds since the epoch.
        ts: f64,
    },
}

impl<'de> Deserialize<'de> for SendOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let obj = v
            .as_object()
            .ok_or_else(|| D::Error::custom("send_message result must be an object"))?;
        if obj.get("refused").and_then(Value::as_bool) == Some(true) {
            let text = |k: &str| {
                obj.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| D::Error::custom(format!("refusal without {k}")))
            };
            return Ok(SendOutcome::Refused {
                refused: true,
                hash: text("hash")?,
                sig: text("sig")?,
            });
        }
        Ok(SendOutcome::Stored {
            message_id: obj
                .get("message_id")
                .and_then(Value::as_i64)
                .ok_or_else(|| D::Error::custom("message_id must be an integer"))?,
            ts: obj
                .get("ts")
                .and_then(Value::as_f64)
                .ok_or_else(|| D::Error::custom("ts must be a number"))?,
        })
    }
}

impl Tool for SendMessage {
    const NAME: &'static str = "send_message";
    type Response = SendOutcome;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(Self::NAME, args, &["to", "mtype", "body"])?;
        let to = a.user_id("to")?;
        let mtype = match a.required("mtype")?.as_u64() {
            Some(n @ (0 | 1)) => MessageType::try_from(n as u8)?,
            _ => {
                return Err(WireError::BadRequest(
                    "send_message: argument \"mtype\" must be 0 (pre-key) or 1 (normal)".into(),
                ))
            }
        };
        let body = a.string("body")?;
        if !SendMessage::body_is_valid(body) {
            return Err(WireError::BadRequest(
                "send_message: argument \"body\" must be non-empty padded standard base64".into(),
            ));
        }
        Ok(SendMessage {
            to,
            mtype,
            body: body.to_owned(),
        })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("to".into(), self.to.as_str().into());
        m.insert("mtype".into(), u8::from(self.mtype).into());
        m.insert("body".into(), self.body.clone().into());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse() {
        let stored: SendOutcome =
            serde_json::from_str(r#"{"message_id": 7, "ts": 1700000000.25}"#).unwrap();
        assert_eq!(
            stored,
            SendOutcome::Stored {
                message_id: 7,
                ts: 1700000000.25
            }
        );
        let refused: SendOutcome =
            serde_json::from_str(r#"{"refused": true, "hash": "ab", "sig": "cd"}"#).unwrap();
        assert!(matches!(refused, SendOutcome::Refused { .. }));
        assert!(serde_json::from_str::<SendOutcome>(r#"{"message_id": "x"}"#).is_err());
        let back: SendOutcome =
            serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
        assert_eq!(back, stored);
    }
}
