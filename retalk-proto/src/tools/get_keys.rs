//! `get_keys`: a peer's public identity and signing keys, without consuming
//! a one-time key. Used to check a pre-key message's sender against its id.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;
use crate::ids::UserId;

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetKeys {
    /// Whose keys.
    pub peer: UserId,
}

/// A user's long-term public keys. The client must check they hash to the
/// id it asked for: the relay is not trusted to serve the right ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// Curve25519 identity key, unpadded base64.
    pub identity_key: String,
    /// Ed25519 signing key, unpadded base64.
    pub signing_key: String,
}

impl Tool for GetKeys {
    const NAME: &'static str = "get_keys";
    type Response = PublicKeys;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(Self::NAME, args, &["peer"])?;
        Ok(GetKeys {
            peer: a.user_id("peer")?,
        })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("peer".into(), self.peer.as_str().into());
        m
    }
}
