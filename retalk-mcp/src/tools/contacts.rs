//! `contacts {}`: the saved contacts and the blocked fingerprints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "List the saved contacts (local name, fingerprint, whether their \
keys were verified against the fingerprint) and the blocked fingerprints. Use a contact's \
name as `peer` in the other tools.";

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {}

/// One saved contact.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContactOut {
    /// The local name.
    pub name: String,
    /// The contact's fingerprint (user id).
    pub fingerprint: String,
    /// Both keys were checked against the fingerprint and are pinned.
    pub verified: bool,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// Saved contacts, sorted by name.
    pub contacts: Vec<ContactOut>,
    /// Blocked fingerprints (their mail is refused unread).
    pub blocked: Vec<String>,
}

/// Runs the tool.
pub fn run(shared: &Shared, _args: Args) -> Result<Out, ToolError> {
    let contacts = shared
        .user
        .contacts()
        .list()?
        .into_iter()
        .map(|c| ContactOut {
            verified: c.verified(),
            name: c.name,
            fingerprint: c.id.to_string(),
        })
        .collect();
    let blocked = shared
        .user
        .blocklist()
        .list()?
        .into_iter()
        .map(|i| i.to_string())
        .collect();
    Ok(Out { contacts, blocked })
}
