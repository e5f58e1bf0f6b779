//! The plaintext inside every Olm message: a small JSON object whose `kind`
//! says what it is. Chat messages carry an id the receiver acknowledges;
//! acknowledgements carry the id they acknowledge. Kinds this client does not
//! know (0.3.x groups, contacts, ...) are kept as `Other` and ignored by the
//! caller rather than failing the mailbox.

use serde_json::{Map, Value};

/// A decrypted envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// `{"id", "kind": "msg", "text", "name"}`.
    Msg {
        /// 32-hex message id, chosen by the sender.
        id: String,
        /// The message text.
        text: String,
        /// The sender's self-chosen (unverified) name; may be empty.
        name: String,
    },
    /// `{"id", "kind": "ack"}`: the sender of this decrypted message `id`.
    Ack {
        /// The acknowledged message id.
        id: String,
    },
    /// Any other kind: recognised as well formed, not understood.
    Other {
        /// The `kind` field.
        kind: String,
        /// The `id` field, if any (such messages are still acknowledged).
        id: Option<String>,
    },
}

/// Why a plaintext is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a retalk envelope: {0}")]
pub struct EnvelopeError(pub String);

impl Envelope {
    /// A new chat message with a fresh random id.
    pub fn new_msg(text: impl Into<String>, name: impl Into<String>) -> Self {
        let id: [u8; 16] = rand::random();
        Envelope::Msg {
            id: hex::encode(id),
            text: text.into(),
            name: name.into(),
        }
    }

    /// The envelope's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Envelope::Msg { id, .. } | Envelope::Ack { id } => Some(id),
            Envelope::Other { id, .. } => id.as_deref(),
        }
    }

    /// Parses decrypted bytes.
    pub fn parse(plaintext: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(plaintext)
            .map_err(|e| EnvelopeError(format!("not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| EnvelopeError("not an object".into()))?;
        let str_field = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind = str_field("kind").ok_or_else(|| EnvelopeError("no kind".into()))?;
        let id = str_field("id");
        Ok(match kind.as_str() {
            "msg" => Envelope::Msg {
                id: id.ok_or_else(|| EnvelopeError("msg without id".into()))?,
                text: str_field("text").ok_or_else(|| EnvelopeError("msg without text".into()))?,
                name: str_field("name").unwrap_or_default(),
            },
            "ack" => Envelope::Ack {
                id: id.ok_or_else(|| EnvelopeError("ack without id".into()))?,
            },
            _ => Envelope::Other { kind, id },
        })
    }

    /// The plaintext bytes to encrypt.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = Map::new();
        match self {
            Envelope::Msg { id, text, name } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "msg".into());
                m.insert("text".into(), text.as_str().into());
                m.insert("name".into(), name.as_str().into());
            }
            Envelope::Ack { id } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "ack".into());
            }
            Envelope::Other { kind, id } => {
                if let Some(id) = id {
                    m.insert("id".into(), id.as_str().into());
                }
                m.insert("kind".into(), kind.as_str().into());
            }
        }
        serde_json::to_vec(&Value::Object(m)).expect("JSON values always serialize")
    }
}
