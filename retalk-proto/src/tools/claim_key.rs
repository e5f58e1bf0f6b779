//! `claim_key`: hand out one of a peer's one-time keys (each at most once,
//! even under concurrent claims), or the peer's fallback key when none is
//! left, so a session can start while the peer is offline.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;
use crate::ids::UserId;

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimKey {
    /// Whose key.
    pub peer: UserId,
}

/// A claimed key, with the owner's long-term keys to check against the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKey {
    /// Curve25519 identity key, unpadded base64.
    pub identity_key: String,
    /// Ed25519 signing key, unpadded base64.
    pub signing_key: String,
    /// The key's id in the owner's account.
    pub key_id: String,
    /// The Curve25519 one-time (or fallback) key, unpadded base64.
    pub one_time_key: String,
    /// True when this is the reusable fallback key.
    pub fallback: bool,
}

impl Tool for ClaimKey {
    const NAME: &'static str = "claim_key";
    type Response = ClaimedKey;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(Self::NAME, args, &["peer"])?;
        Ok(ClaimKey {
            peer: a.user_id("peer")?,
        })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("peer".into(), self.peer.as_str().into());
        m
    }
}
