//! `verify {peer}`: check a contact's keys against its fingerprint and pin
//! them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Verify a saved contact: fetch their public keys from the relay, \
check that they hash to the contact's fingerprint, and pin them, so every later key the relay \
serves for them must match. Fails with PIN MISMATCH when the relay serves other keys (do not \
retry; tell the user).";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// A saved contact: its name or fingerprint.
    pub peer: String,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The contact's saved name.
    pub name: String,
    /// The contact's fingerprint.
    pub fingerprint: String,
    /// Always true on success.
    pub verified: bool,
    /// The pinned Curve25519 identity key, base64.
    pub identity_key: String,
    /// The pinned Ed25519 signing key, base64.
    pub signing_key: String,
}

/// Runs the tool.
pub async fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let c = shared
        .user
        .contacts()
        .get(args.peer.trim())?
        .ok_or_else(|| {
            ToolError::new(
                "unknown_peer",
                format!(
                    "no saved contact '{}'",
                    crate::error::one_line(args.peer.trim())
                ),
            )
            .hint("save it first with the `add` tool; `contacts` lists the saved names")
        })?;
    let (identity_key, signing_key) = shared.user.contacts().verify_from_relay(&c.id).await?;
    Ok(Out {
        name: c.name,
        fingerprint: c.id.to_string(),
        verified: true,
        identity_key,
        signing_key,
    })
}
