//! `block {peer, remove?}`: refuse (or accept again) a sender's mail.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{parse_fingerprint, resolve};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Block a sender: their mail is refused unread from now on (it \
cannot use up this identity's keys). With remove, unblock them. peer is a saved name or a \
fingerprint.";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// A saved contact name, or a fingerprint (32 hex).
    pub peer: String,
    /// Unblock instead.
    #[serde(default)]
    pub remove: Option<bool>,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The fingerprint concerned.
    pub fingerprint: String,
    /// Whether it is blocked now.
    pub blocked: bool,
    /// Whether this call changed anything.
    pub changed: bool,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let p = args.peer.trim();
    let id = if p.len() == 32 && p.bytes().all(|b| b.is_ascii_hexdigit()) {
        parse_fingerprint(p)?
    } else {
        resolve(shared, p)?
    };
    let remove = args.remove.unwrap_or(false);
    let b = shared.user.blocklist();
    let changed = if remove { b.remove(&id)? } else { b.add(&id)? };
    Ok(Out {
        fingerprint: id.to_string(),
        blocked: !remove,
        changed,
    })
}
