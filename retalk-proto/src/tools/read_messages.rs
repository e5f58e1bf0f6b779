//! `read_messages`: hand over the caller's pending mail and delete it in the
//! same transaction. 0.3.x adds `peer` (only one sender's mail) and `peek`
//! (look without deleting); this relay adds `wait` (hold an empty read open
//! until mail arrives, up to 60 s) so listeners need not poll.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;
use crate::ids::UserId;

/// Longest `wait` a relay honours, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// The request. Only the options that are set go on the wire (that is what
/// 0.3.x signs, and a 0.0.1 relay refuses any argument at all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadMessages {
    /// Only this sender's mail.
    pub peer: Option<UserId>,
    /// Return without deleting.
    pub peek: bool,
    /// Seconds to wait for mail when the mailbox is empty (1 to 60).
    pub wait: Option<u64>,
}

/// One message handed over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    /// The relay's id; ascending in arrival order.
    pub message_id: i64,
    /// When the relay stored it, seconds since the epoch.
    pub ts: f64,
    /// The authenticated sender.
    pub from: String,
    /// 0 pre-key, 1 normal (other values come only from foreign relays).
    pub mtype: i64,
    /// Olm message bytes, padded standard base64.
    pub body: String,
}

impl Tool for ReadMessages {
    const NAME: &'static str = "read_messages";
    type Response = Vec<Mail>;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(Self::NAME, args, &["peer", "peek", "wait"])?;
        let peer = a.optional_user_id("peer")?;
        let peek = match a.optional("peek") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(WireError::BadRequest(
                    "read_messages: argument \"peek\" must be true or false".into(),
                ))
            }
        };
        let wait = match a.optional("wait") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=MAX_WAIT_SECS) => Some(n),
                _ => {
                    return Err(WireError::BadRequest(format!(
                        "read_messages: argument \"wait\" must be a whole number of seconds from 1 to {MAX_WAIT_SECS}"
                    )))
                }
            },
        };
        Ok(ReadMessages { peer, peek, wait })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(peer) = &self.peer {
            m.insert("peer".into(), peer.as_str().into());
        }
        if self.peek {
            m.insert("peek".into(), true.into());
        }
        if let Some(wait) = self.wait {
            m.insert("wait".into(), wait.into());
        }
        m
    }
}
