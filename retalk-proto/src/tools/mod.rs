//! One module per relay tool. Each holds the typed request (with its parse
//! step from wire args and its wire form) and the typed response, so the
//! client and the relay share a single definition of every message.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::WireError;
use super::ids::{IdentityKey, UserId};

pub mod claim_key;
pub mod count_keys;
pub mod get_keys;
pub mod nack;
pub mod publish_keys;
pub mod read_messages;
pub mod send_message;

pub use claim_key::{ClaimKey, ClaimedKey};
pub use count_keys::{CountKeys, KeyCounts};
pub use get_keys::{GetKeys, PublicKeys};
pub use nack::{Nack, NackOk};
pub use publish_keys::{PublishKeys, Published};
pub use read_messages::{Mail, ReadMessages};
pub use send_message::{MessageType, SendMessage, SendOutcome};

/// A relay tool: its name, its business arguments and its result.
pub trait Tool: Sized {
    /// The `tool` field on the wire.
    const NAME: &'static str;
    /// The tool's successful result.
    type Response: Serialize + DeserializeOwned;
    /// Reads and validates the business arguments (everything in `args`
    /// except `auth`).
    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError>;
    /// The business arguments exactly as reference clients send them (the
    /// signature covers their canonical form).
    fn to_args(&self) -> Map<String, Value>;
}

/// Any tool call, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `publish_keys`
    PublishKeys(PublishKeys),
    /// `count_keys`
    CountKeys(CountKeys),
    /// `get_keys`
    GetKeys(GetKeys),
    /// `claim_key`
    ClaimKey(ClaimKey),
    /// `send_message`
    SendMessage(SendMessage),
    /// `read_messages`
    ReadMessages(ReadMessages),
    /// `nack`
    Nack(Nack),
}

impl Call {
    /// Names of every tool, for error messages.
    pub const NAMES: [&'static str; 7] = [
        PublishKeys::NAME,
        CountKeys::NAME,
        GetKeys::NAME,
        ClaimKey::NAME,
        SendMessage::NAME,
        ReadMessages::NAME,
        Nack::NAME,
    ];

    /// Parses the business args of the named tool.
    pub fn parse(tool: &str, args: &Map<String, Value>) -> Result<Self, WireError> {
        Ok(match tool {
            PublishKeys::NAME => Call::PublishKeys(PublishKeys::from_args(args)?),
            CountKeys::NAME => Call::CountKeys(CountKeys::from_args(args)?),
            GetKeys::NAME => Call::GetKeys(GetKeys::from_args(args)?),
            ClaimKey::NAME => Call::ClaimKey(ClaimKey::from_args(args)?),
            SendMessage::NAME => Call::SendMessage(SendMessage::from_args(args)?),
            ReadMessages::NAME => Call::ReadMessages(ReadMessages::from_args(args)?),
            Nack::NAME => Call::Nack(Nack::from_args(args)?),
            other => {
                return Err(WireError::BadRequest(format!(
                    "unknown tool {other:?} (known: {})",
                    Call::NAMES.join(", ")
                )))
            }
        })
    }

    /// The tool's name.
    pub fn name(&self) -> &'static str {
        match self {
            Call::PublishKeys(_) => PublishKeys::NAME,
            Call::CountKeys(_) => CountKeys::NAME,
            Call::GetKeys(_) => GetKeys::NAME,
            Call::ClaimKey(_) => ClaimKey::NAME,
            Call::SendMessage(_) => SendMessage::NAME,
            Call::ReadMessages(_) => ReadMessages::NAME,
            Call::Nack(_) => Nack::NAME,
        }
    }
}

/// Typed access to a tool's argument object, with errors that name the tool
/// and the argument.
pub(crate) struct Args<'a> {
    tool: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Wraps `map`, refusing arguments the tool does not define (the
    /// reference refuses them too, and silently ignoring one would let a
    /// typo change meaning).
    pub(crate) fn new(
        tool: &'static str,
        map: &'a Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, WireError> {
        if let Some(extra) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(WireError::BadRequest(format!(
                "{tool}: unexpected argument {extra:?} (expected: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        Ok(Self { tool, map })
    }

    fn bad(&self, name: &str, what: &str) -> WireError {
        WireError::BadRequest(format!("{}: argument {name:?} {what}", self.tool))
    }

    /// The argument, or `None` when absent or `null`.
    pub(crate) fn optional(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn required(&self, name: &str) -> Result<&'a Value, WireError> {
        self.map
            .get(name)
            .ok_or_else(|| self.bad(name, "is missing"))
    }

    pub(crate) fn string(&self, name: &str) -> Result<&'a str, WireError> {
        self.required(name)?
            .as_str()
            .ok_or_else(|| self.bad(name, "must be a string"))
    }

    pub(crate) fn user_id(&self, name: &'static str) -> Result<UserId, WireError> {
        let s = self.string(name)?;
        UserId::parse(s, name)
            .map_err(|_| self.bad(name, "must be a user id (32 lowercase hex characters)"))
    }

    pub(crate) fn optional_user_id(&self, name: &'static str) -> Result<Option<UserId>, WireError> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => UserId::parse(s, name)
                .map(Some)
                .map_err(|_| self.bad(name, "must be a user id (32 lowercase hex characters)")),
            Some(_) => Err(self.bad(name, "must be a string")),
        }
    }

    pub(crate) fn key(&self, name: &'static str) -> Result<IdentityKey, WireError> {
        let s = self.string(name)?;
        IdentityKey::parse(s, name)
            .map_err(|_| self.bad(name, "must be a 32-byte key in unpadded base64"))
    }

    pub(crate) fn object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, WireError> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(self.bad(name, "must be an object or null")),
        }
    }

    pub(crate) fn tool(&self) -> &'static str {
        self.tool
    }
}
