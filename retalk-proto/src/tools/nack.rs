//! `nack` (0.3.x): the caller refuses, for good, any message whose
//! ciphertext hashes to `hash`. The refusal is signed by the caller so the
//! relay can hand it to the sender as proof (the relay cannot forge one), and
//! the sender stops re-sending even if it never reads its own mail.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// sha256 hex of the refused body text.
    pub hash: String,
    /// The caller's Ed25519 signature over `nack|<caller id>|<hash>`, base64.
    pub sig: String,
}

impl Nack {
    /// The text a refusal signature covers.
    pub fn signed_text(refuser: &str, hash: &str) -> String {
        format!("nack|{refuser}|{hash}")
    }

    /// The signature bytes; `None` when `sig` is not a 64-byte base64
    /// signature (never for a parsed request; the fields are public, so a
    /// hand-built value may hold anything).
    pub fn sig_bytes(&self) -> Option<[u8; 64]> {
        decode_sig(&self.sig)
    }
}

fn decode_sig(s: &str) -> Option<[u8; 64]> {
    STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()?
        .try_into()
        .ok()
}

/// `{"ok": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NackOk {
    /// Always true.
    pub ok: bool,
}

impl Tool for Nack {
    const NAME: &'static str = "nack";
    type Response = NackOk;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(Self::NAME, args, &["hash", "sig"])?;
        let hash = a.string("hash")?;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(WireError::BadRequest(
                "hash must be a 64-char sha256 hex digest".into(),
            ));
        }
        let sig = a.string("sig")?;
        if decode_sig(sig).is_none() {
            return Err(WireError::BadRequest(
                "nack: argument \"sig\" must be a 64-byte signature in base64".into(),
            ));
        }
        Ok(Nack {
            hash: hash.to_owned(),
            sig: sig.to_owned(),
        })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("hash".into(), self.hash.clone().into());
        m.insert("sig".into(), self.sig.clone().into());
        m
    }
}
